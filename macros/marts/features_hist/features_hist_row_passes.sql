{#-
    features_hist, row space: the two window passes over the draws, in the order of the
    staging table's unique index (no sort), each O(1) per row. Pass 1 (series_running): row
    index, lag 1, expanding extremes (with the earlier rows' ones of an incremental run) and
    the carry-over's exact centred sum of squares over var('stat_window') rows. Pass 2
    (series_prefix): prefix sums of y, y^2, y^p for each p in `powers`, index * y, y * lag1,
    co and co * y, and ds as microseconds.
    Reads: the model's CTE series_draws.
    Defines: series_running, series_prefix.
    Usage: {{ features_hist_row_passes(fixed_window, powers) }},
-#}
{% macro features_hist_row_passes(fixed_window, powers) -%}
    {#- The largest |co| whose square fits in a bigint: floor(sqrt(2^63 - 1)). -#}
    {%- set max_exact_square = 3037000499 %}
    series_running as (
        -- Row space, pass 1: row index, lag 1, expanding extremes, and the carry-over's centred
        -- sum of squares over the window, n sum(co^2) - sum(co)^2, exact, from moving sums with
        -- inverse transitions (O(1) per row); 0 where the window is not complete, which makes
        -- the correlation NULL. co^2 is summed as bigint (the server adds bigints in 128 bits)
        -- where it fits in one, and in numeric only beyond (carry-overs over 3 billion yen): a
        -- numeric square and sum on every row cost twice as much.
        select
            series_draws.loto,
            series_draws.unique_id,
            series_draws.ds,
            series_draws.y,
            series_draws.co,
            series_draws.is_emitted,
            row_number() over running as row_index,
            lag(series_draws.y) over running as y_lag1,
            greatest(max(series_draws.y) over running, series_draws.earlier_y_max) as running_max,
            least(min(series_draws.y) over running, series_draws.earlier_y_min) as running_min,
            case
                when count(series_draws.co) over co_window = {{ fixed_window }}
                    then (
                        {{ fixed_window }} * (
                            coalesce(
                                sum(
                                    case
                                        when abs(series_draws.co) <= {{ max_exact_square }}
                                            then series_draws.co * series_draws.co
                                    end
                                ) over co_window,
                                0
                            )
                            + coalesce(
                                sum(
                                    case
                                        when abs(series_draws.co) > {{ max_exact_square }}
                                            then series_draws.co::numeric * series_draws.co
                                    end
                                ) over co_window,
                                0
                            )
                        )
                        - sum(series_draws.co) over co_window * sum(series_draws.co) over co_window
                    )::double precision
                else 0
            end as co_var_n
        from series_draws
        window
            running as ({{ hist_series_order('series_draws') }} rows between unbounded preceding and current row),
            co_window as (
                {{ hist_series_order('series_draws') }} rows between {{ fixed_window - 1 }} preceding and current row
            )
    ),

    series_prefix as (
        -- Row space, pass 2: prefix sums, exact as long as they stay below 2^53 (integer values).
        -- The arrays below must hold no NULLs: a NULL carry-over becomes NaN in the values and 0
        -- in the sums (a window with one is never used: its co_var_n is 0).
        select
            series_running.loto,
            series_running.unique_id,
            series_running.ds,
            series_running.is_emitted,
            series_running.row_index,
            series_running.y,
            series_running.running_max,
            series_running.running_min,
            series_running.co_var_n,
            coalesce(series_running.co::double precision, 'NaN') as co,
            -- ds as microseconds since 1970 (a whole number below 2^53 until the year 2255: exact
            -- in double precision), so a timestamp with a time of day comes back out unchanged.
            (extract(epoch from series_running.ds) * 1000000)::double precision as ds_us,
            sum(series_running.y) over running as y_sum,
            sum(series_running.y * series_running.y) over running as y_sq_sum,
            {%- for p in powers %}
                sum({{ (['series_running.y'] * p) | join(' * ') }}) over running as y_pow{{ p }}_sum,
            {%- endfor %}
            sum(series_running.row_index * series_running.y) over running as index_y_sum,
            sum(coalesce(series_running.y * series_running.y_lag1, 0)) over running as lag_cross_sum,
            sum(coalesce(series_running.co::double precision, 0)) over running as co_sum,
            sum(coalesce(series_running.co * series_running.y, 0)) over running as co_y_sum
        from series_running
        window running as ({{ hist_series_order('series_running') }} rows between unbounded preceding and current row)
    )
{%- endmacro %}
