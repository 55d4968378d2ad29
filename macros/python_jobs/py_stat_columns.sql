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
    {#- stat_tsfresh_* columns: appended by the tsfresh family (see python_jobs/features/tsfresh_subset.py) -#}
    {{ return(cols) }}
{% endmacro %}
