{#-
    features_hist: the exact window moments of the series that the double precision prefix sums
    cannot serve (hist_needs_exact_sums: a non-integer y, such as prices, or whole numbers whose
    prefix sums could pass 2^53): numeric moving sums over each of `moment_windows` (y^p for
    each p in `powers`) and over `fixed_window` rows for the slope and the correlations,
    centred in numeric and rounded once to double precision. A lottery's draws never take this
    path.
    Reads: the model's CTE exact_draws.
    Defines: exact_series, exact_rows, exact_sums, exact_moments (one row per draw of those
    series, the columns row_moments takes instead of the prefix-sum ones).
    Usage: {{ features_hist_exact_moments(windows, moment_windows, powers, fixed_window) }},
-#}
{% macro features_hist_exact_moments(windows, moment_windows, powers, fixed_window) -%}
    exact_series as (
        -- The series whose window moments come from exact_moments: a non-integer y, or whole
        -- numbers too large for exact double precision prefix sums. Over every staged row of
        -- the series, in an incremental run too, so both runs choose alike.
        select
            exact_draws.loto,
            exact_draws.unique_id
        from exact_draws
        group by
            exact_draws.loto,
            exact_draws.unique_id
        having {{ hist_needs_exact_sums('exact_draws.y', 'exact_draws.co') }}
    ),

    exact_rows as (
        select
            exact_draws.loto,
            exact_draws.unique_id,
            exact_draws.ds,
            exact_draws.y,
            exact_draws.co::numeric as co,
            row_number() over series_order as row_index,
            lag(exact_draws.y) over series_order as y_lag1
        from exact_draws
        inner join exact_series
            on
                exact_draws.loto = exact_series.loto
                and exact_draws.unique_id = exact_series.unique_id
        window series_order as ({{ hist_series_order('exact_draws') }})
    ),

    exact_sums as (
        -- The window sums of those series in numeric, exact for any decimal y, from moving frames
        -- (O(1) per row: numeric sums have inverse transitions). Each sum is NULL until its
        -- window is complete, as a difference of the prefix arrays is.
        select
            exact_rows.loto,
            exact_rows.unique_id,
            exact_rows.ds,
            exact_rows.y,
            exact_rows.row_index,
            {%- for w in moment_windows %}
                {%- set frame = 'w' ~ w %}
                {%- set full = 'count(*) over ' ~ frame ~ ' = ' ~ w %}
                case when {{ full }} then sum(exact_rows.y) over {{ frame }} end as y_sum_w{{ w }},
                case when {{ full }} then sum(exact_rows.y * exact_rows.y) over {{ frame }} end as y_sq_sum_w{{ w }},
                {%- for p in powers %}
                    case when {{ full }} then sum({{ (['exact_rows.y'] * p) | join(' * ') }}) over {{ frame }} end
                        as y_pow{{ p }}_sum_w{{ w }},
                {%- endfor %}
            {%- endfor %}
            sum(exact_rows.row_index * exact_rows.y) over w{{ fixed_window }} as index_y_sum,
            -- Lag-1 pairs of the last window - 1 rows, complete where the lag of the earliest is known.
            case
                when count(exact_rows.y_lag1) over lead_frame = {{ fixed_window - 1 }}
                    then sum(exact_rows.y) over lead_frame
            end as lead_sum,
            sum(exact_rows.y * exact_rows.y) over lead_frame as lead_sq_sum,
            sum(exact_rows.y_lag1) over lead_frame as lag_sum,
            sum(exact_rows.y_lag1 * exact_rows.y_lag1) over lead_frame as lag_sq_sum,
            sum(exact_rows.y * exact_rows.y_lag1) over lead_frame as cross_sum,
            case
                when count(exact_rows.co) over w{{ fixed_window }} = {{ fixed_window }}
                    then
                        {{ fixed_window }} * sum(exact_rows.co * exact_rows.co) over w{{ fixed_window }}
                        - sum(exact_rows.co) over w{{ fixed_window }} * sum(exact_rows.co) over w{{ fixed_window }}
                else 0
            end as co_var_n,
            sum(exact_rows.co) over w{{ fixed_window }} as co_sum,
            sum(exact_rows.co * exact_rows.y) over w{{ fixed_window }} as co_y_sum
        from exact_rows
        window
            {%- for w in moment_windows %}
                w{{ w }} as ({{ hist_series_order('exact_rows') }} rows between {{ w - 1 }} preceding and current row),
            {%- endfor %}
            lead_frame as (
                {{ hist_series_order('exact_rows') }} rows between {{ fixed_window - 2 }} preceding and current row
            )
    ),

    exact_moments as (
        -- The centred sums of exact_sums, exact in numeric and rounded once to double precision;
        -- row_moments takes them instead of the prefix-sum ones for these series.
        select
            exact_sums.loto,
            exact_sums.unique_id,
            exact_sums.ds,
            {%- for w in moment_windows %}
                exact_sums.y_sum_w{{ w }}::double precision / {{ w }} as y_mean_w{{ w }},
                ({{ w }} * exact_sums.y - exact_sums.y_sum_w{{ w }})::double precision / {{ w }} as y_dev_mean_w{{ w }},
                ({{ window_centered_power_sum('exact_sums', w, 2) }})::double precision as y_var_n_w{{ w }},
                {%- for p in powers if w >= p and w in windows %}
                    ({{ window_centered_power_sum('exact_sums', w, p) }})::double precision
                        as y_centered_pow{{ p }}_n_w{{ w }},
                {%- endfor %}
            {%- endfor %}
            (
                {{ fixed_window }} * exact_sums.index_y_sum
                - ({{ fixed_window }} * exact_sums.row_index - {{ (fixed_window * (fixed_window - 1) / 2) | int }})
                * exact_sums.y_sum_w{{ fixed_window }}
            )::double precision
            / {{ (fixed_window * fixed_window * (fixed_window * fixed_window - 1) / 12) | int }} as trend_slope,
            {{ pearson_from_centered_sums(
                '(' ~ (fixed_window - 1) ~ ' * exact_sums.cross_sum - exact_sums.lead_sum * exact_sums.lag_sum)::double precision',
                '(' ~ (fixed_window - 1) ~ ' * exact_sums.lead_sq_sum - exact_sums.lead_sum * exact_sums.lead_sum)::double precision',
                '(' ~ (fixed_window - 1) ~ ' * exact_sums.lag_sq_sum - exact_sums.lag_sum * exact_sums.lag_sum)::double precision',
            ) }} as autocorr1,
            {{ pearson_from_centered_sums(
                '(' ~ fixed_window ~ ' * exact_sums.co_y_sum - exact_sums.y_sum_w' ~ fixed_window ~ ' * exact_sums.co_sum)::double precision',
                '(' ~ window_centered_power_sum('exact_sums', fixed_window, 2) ~ ')::double precision',
                'exact_sums.co_var_n::double precision',
            ) }} as co_corr
        from exact_sums
    )
{%- endmacro %}
