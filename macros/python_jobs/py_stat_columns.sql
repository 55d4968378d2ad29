{#-
    Per-series columns written by the Python job into py_features_stat, in registry order.
    Must equal python_jobs.features.registry.output_columns("stat") (a pytest keeps them equal).
    Usage: {% for col in py_stat_columns() %} ... {% endfor %}
-#}
{% macro py_stat_columns() %}
    {%- set catch22 = [
        'dn_histogrammode_5', 'dn_histogrammode_10', 'dn_outlierinclude_p_001_mdrmd',
        'dn_outlierinclude_n_001_mdrmd', 'co_firstcrossing_acf_1e_pointofcrossing', 'co_firstmin_ac',
        'sp_summaries_fft_area_5_1', 'sp_summaries_fft_wq_50', 'fc_localsimple_mean3_stde',
        'fc_localsimple_mean1_taurat', 'md_pnn_pnn40', 'sb_binarystats_mean_longstretch1',
        'sb_binarystats_diff_longstretch0', 'sb_motifthree_quantile_hh', 'co_histogramami_even_5bin_ami2',
        'co_trev_1_num', 'in_automutualinfostats_40_gaussian_fmmi',
        'sb_transitionmatrix_quantile_3_ac_sumdiagcov', 'pd_periodicitywang_th0_01',
        'co_embed2_dist_tau_d_expfit_meandiff', 'sc_fluctanal_2_rsrangefit_50_1_logi_prop_r1',
        'sc_fluctanal_2_dfa_50_1_2_logi_prop_r1',
    ] -%}
    {%- set cols = [] -%}
    {%- for name in catch22 -%}{%- do cols.append('stat_c22_' ~ name) -%}{%- endfor -%}
    {%- for name in ['stat_ent_perm', 'stat_ent_spectral', 'stat_ent_svd', 'stat_ent_app', 'stat_ent_sample',
                     'stat_hjorth_mobility', 'stat_hjorth_complexity', 'stat_fd_petrosian', 'stat_fd_katz',
                     'stat_fd_higuchi', 'stat_dfa'] -%}
        {%- do cols.append(name) -%}
    {%- endfor -%}
    {%- for name in ['centroid', 'spread', 'rolloff', 'flatness', 'dominant_freq', 'dominant_power_ratio'] -%}
        {%- do cols.append('stat_spec_' ~ name) -%}
    {%- endfor -%}
    {%- for name in ['min', 'max', 'mean', 'std', 'motif_idx', 'discord_idx'] -%}
        {%- do cols.append('stat_mp_m' ~ var('mp_window') ~ '_' ~ name) -%}
    {%- endfor -%}
    {%- for k in range(1, 11) -%}{%- do cols.append('stat_acf_lag' ~ k) -%}{%- endfor -%}
    {%- for k in range(1, 6) -%}{%- do cols.append('stat_pacf_lag' ~ k) -%}{%- endfor -%}
    {%- for name in ['stat_trend_strength', 'stat_seasonality_strength', 'stat_linearity', 'stat_curvature',
                     'stat_spikiness', 'stat_stability', 'stat_lumpiness', 'stat_entropy_tsfeatures',
                     'stat_hurst_exponent', 'stat_crossing_points', 'stat_flat_spots'] -%}
        {%- do cols.append(name) -%}
    {%- endfor -%}
    {#- tsfresh column names: python_jobs/features/tsfresh_subset.py documents the mapping -#}
    {%- set tsfresh = [
        'abs_energy', 'absolute_maximum', 'absolute_sum_of_changes', 'benford_correlation',
        'count_above_mean', 'count_below_mean', 'first_location_of_maximum', 'first_location_of_minimum',
        'last_location_of_maximum', 'last_location_of_minimum', 'has_duplicate_max', 'has_duplicate_min',
        'kurtosis', 'skewness', 'longest_strike_above_mean', 'longest_strike_below_mean',
        'mean_abs_change', 'mean_change', 'mean_second_derivative_central',
        'percentage_of_reoccurring_values_to_all_values', 'ratio_value_number_to_time_series_length',
        'sum_of_reoccurring_data_points', 'sum_of_reoccurring_values', 'variation_coefficient',
        'root_mean_square', 'cid_ce__normalize_true', 'c3__lag_1', 'c3__lag_2',
        'time_reversal_asymmetry_statistic__lag_1', 'time_reversal_asymmetry_statistic__lag_2',
        'number_peaks__n_3', 'binned_entropy__max_bins_10', 'quantile__q_0_1', 'quantile__q_0_9',
        'mean_n_absolute_max__number_of_maxima_7', 'autocorrelation__lag_1',
        'agg_autocorrelation__f_agg_mean__maxlag_40', 'linear_trend__attr_slope',
        'linear_trend__attr_rvalue', 'ratio_beyond_r_sigma__r_2',
    ] -%}
    {%- for name in tsfresh -%}{%- do cols.append('stat_tsfresh_' ~ name) -%}{%- endfor -%}
    {{ return(cols) }}
{% endmacro %}
