{#-
    features_hist: the select of row_moments, the centred sums and ratios of each row: mean,
    deviation from the mean, variance (times n) and std over each of `moment_windows`, the
    higher centred power sums of `windows` (p in `powers`), the slope, the lag-1
    autocorrelation and the carry-over correlation over `fixed_window` rows. From the
    prefix-sum window sums of row_windows, exact for whole numbers; from exact_moments for a
    series that needs exact sums (hist_needs_exact_sums).
    Reads: the model's CTEs row_windows and exact_moments.
    Usage: row_moments as ({{ features_hist_row_moments(windows, moment_windows, powers, fixed_window) }})
-#}
{% macro features_hist_row_moments(windows, moment_windows, powers, fixed_window) -%}
    {%- set is_exact = 'exact_moments.loto is not null' %}
    select
        row_windows.*,
        {%- for w in moment_windows %}
            {%- set sum_sq = 'row_windows.y_sq_sum_w' ~ w %}
            {%- set sum_y = 'row_windows.y_sum_w' ~ w %}
            {%- set var_n = w ~ ' * ' ~ sum_sq ~ ' - ' ~ sum_y ~ ' * ' ~ sum_y %}
            case
                when {{ is_exact }} then exact_moments.y_mean_w{{ w }} else row_windows.y_sum_w{{ w }} / {{ w }}
            end as y_mean_w{{ w }},
            {#- (n y - S1) / n: exact up to the one division, as exact_moments computes it. #}
            case
                when {{ is_exact }} then exact_moments.y_dev_mean_w{{ w }}
                else ({{ w }} * row_windows.y - row_windows.y_sum_w{{ w }}) / {{ w }}
            end as y_dev_mean_w{{ w }},
            case when {{ is_exact }} then exact_moments.y_var_n_w{{ w }} else {{ var_n }} end as y_var_n_w{{ w }},
            sqrt(
                case when {{ is_exact }} then exact_moments.y_var_n_w{{ w }} else ({{ var_n }}) end
                / {{ w * (w - 1) }}
            ) as y_std_w{{ w }},
            {#- n^(p-1) sum((y - mean)^p) for the higher moments of hist_window_stats() (skewness, kurtosis). #}
            {%- for p in powers if w >= p and w in windows %}
                case
                    when {{ is_exact }} then exact_moments.y_centered_pow{{ p }}_n_w{{ w }}
                    else {{ window_centered_power_sum_whole('row_windows', w, p) }}
                end as y_centered_pow{{ p }}_n_w{{ w }},
            {%- endfor %}
        {%- endfor %}
        -- Least squares on the row index t over the window: the index sums are those of the
        -- window's n consecutive integers, n sum(t^2) - sum(t)^2 = n^2 (n^2 - 1) / 12.
        case
            when {{ is_exact }} then exact_moments.trend_slope
            else (
                {{ fixed_window }} * row_windows.index_y_sum
                - ({{ fixed_window }} * row_windows.i - {{ (fixed_window * (fixed_window - 1) / 2) | int }})
                * row_windows.y_sum_w{{ fixed_window }}
            ) / {{ (fixed_window * fixed_window * (fixed_window * fixed_window - 1) / 12) | int }}
        end as trend_slope,
        case
            when {{ is_exact }} then exact_moments.autocorr1
            else {{ pearson_from_centered_sums(
                (fixed_window - 1) ~ ' * row_windows.cross_sum - row_windows.lead_sum * row_windows.lag_sum',
                (fixed_window - 1) ~ ' * row_windows.lead_sq_sum - row_windows.lead_sum * row_windows.lead_sum',
                (fixed_window - 1) ~ ' * row_windows.lag_sq_sum - row_windows.lag_sum * row_windows.lag_sum',
            ) }}
        end as autocorr1,
        case
            when {{ is_exact }} then exact_moments.co_corr
            else {{ pearson_from_centered_sums(
                fixed_window ~ ' * row_windows.co_y_sum - row_windows.y_sum_w' ~ fixed_window ~ ' * row_windows.co_sum',
                fixed_window ~ ' * row_windows.y_sq_sum_w' ~ fixed_window
                ~ ' - row_windows.y_sum_w' ~ fixed_window ~ ' * row_windows.y_sum_w' ~ fixed_window,
                'row_windows.co_var_n',
            ) }}
        end as co_corr
    from row_windows
    left join exact_moments
        on
            row_windows.loto = exact_moments.loto
            and row_windows.unique_id = exact_moments.unique_id
            and row_windows.ds = exact_moments.ds
    offset 0  -- noqa: AM09
{%- endmacro %}
