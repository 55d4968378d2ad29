{#-
    features_hist: the select of final, the mart's columns in the order of its YAML: the lags,
    the rolling statistics of hist_window_stats() over `windows`, diffs, percent changes, the
    outlier flags, drawdown and drawup, slope and autocorrelation over `fixed_window` rows,
    the lottery-level `domain_columns`, the carry-over and its correlation, the prizes, the
    gap statistics and the Python job's columns (py_hist_columns()). Every column taken from a
    joined relation here must be in the model's joined_columns, which incremental runs compare.
    Reads: the model's CTEs row_moments (as row_stats), draw_level, draw_prizes,
    prize_correlation and py_hist.
    Usage: final as ({{ features_hist_final(lags, windows, diffs, pct_changes, fixed_window, domain_columns) }})
-#}
{% macro features_hist_final(lags, windows, diffs, pct_changes, fixed_window, domain_columns) -%}
    select
        row_stats.loto,
        row_stats.unique_id,
        row_stats.ds,
        {%- for k in lags %}
            row_stats.y_lag{{ k }} as hist_y_lag{{ k }},
        {%- endfor %}
        {#- The rolling statistics of python_jobs/features/rolling_spec.py, in its order. -#}
        {%- for stat in hist_window_stats() %}
            {%- for w in windows if w >= stat.min_window %}
                {{ hist_window_stat_sql(stat.stat, w) }} as {{ stat.prefix }}{{ w }},
            {%- endfor %}
        {%- endfor %}
        {%- for k in diffs %}
            row_stats.y - row_stats.y_lag{{ k }} as hist_y_diff{{ k }},
        {%- endfor %}
        {%- for k in pct_changes %}
            (row_stats.y - row_stats.y_lag{{ k }}) / nullif(row_stats.y_lag{{ k }}, 0) as hist_y_pct_change{{ k }},
        {%- endfor %}
        case
            when row_stats.y_var_n_w{{ fixed_window }} > 0
                then
                    abs(row_stats.y_dev_mean_w{{ fixed_window }} / row_stats.y_std_w{{ fixed_window }})
                    > {{ var('outlier_z_threshold') }}
        end as hist_y_is_outlier_z_w{{ fixed_window }},
        (
            row_stats.y
            < py_hist.hist_y_roll_q25_w{{ fixed_window }}
            - {{ var('outlier_iqr_multiplier') }}
            * (py_hist.hist_y_roll_q75_w{{ fixed_window }} - py_hist.hist_y_roll_q25_w{{ fixed_window }})
            or row_stats.y
            > py_hist.hist_y_roll_q75_w{{ fixed_window }}
            + {{ var('outlier_iqr_multiplier') }}
            * (py_hist.hist_y_roll_q75_w{{ fixed_window }} - py_hist.hist_y_roll_q25_w{{ fixed_window }})
        ) as hist_y_is_outlier_iqr_w{{ fixed_window }},
        row_stats.y / nullif(row_stats.running_max, 0) - 1 as hist_y_drawdown,
        row_stats.y / nullif(row_stats.running_min, 0) - 1 as hist_y_drawup,
        row_stats.trend_slope as hist_y_trend_slope_w{{ fixed_window }},
        row_stats.autocorr1 as hist_y_roll_autocorr1_w{{ fixed_window }},
        {%- for column in domain_columns %}
            draw_level.{{ column }},
        {%- endfor %}
        row_stats.co::bigint as hist_co,
        row_stats.co_corr as hist_y_co_corr_w{{ fixed_window }},
        draw_prizes.hist_draw_prize1_winners,
        draw_prizes.hist_draw_prize1_payout,
        draw_prizes.hist_draw_payout_total,
        prize_correlation.hist_y_prize1_corr_w{{ fixed_window }},
        draw_level.hist_y_gap_mean,
        draw_level.hist_y_gap_std,
        draw_level.hist_y_gap / draw_level.hist_y_gap_mean as hist_y_overdue_ratio,
        row_stats.hist_y_gap_expected,
        {%- for column in py_hist_columns() %}
            py_hist.{{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from row_moments as row_stats
    left join draw_level
        on
            row_stats.loto = draw_level.loto
            and row_stats.ds = draw_level.ds
            and row_stats.y = draw_level.y
    left join draw_prizes
        on
            row_stats.loto = draw_prizes.loto
            and row_stats.ds = draw_prizes.ds
    left join prize_correlation
        on
            row_stats.loto = prize_correlation.loto
            and row_stats.unique_id = prize_correlation.unique_id
            and row_stats.ds = prize_correlation.ds
    left join py_hist
        on
            row_stats.loto = py_hist.loto
            and row_stats.unique_id = py_hist.unique_id
            and row_stats.ds = py_hist.ds
{%- endmacro %}
