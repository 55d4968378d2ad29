{#-
    features_hist: the select of row_windows, back to one row per draw for the rows a run
    writes, every lag and window by O(1) array subscript: window sums as differences of the
    prefix sums in row_values (read by their `slot` numbers), the lags `fetched_lags` from
    y_values, rolling extremes of `windows` from the doubling blocks, and the sums that the
    moments of `moment_windows` (y^p for each p in `powers`), the slope, the lag-1
    autocorrelation and the carry-over correlation over `fixed_window` rows take.
    Reads: the model's CTE series_level.
    Usage: row_windows as ({{ features_hist_row_windows(slot, windows, moment_windows, fetched_lags, powers,
           fixed_window) }})
-#}
{% macro features_hist_row_windows(slot, windows, moment_windows, fetched_lags, powers, fixed_window) -%}
    select
        series.loto,
        series.unique_id,
        series_row.i,
        series.hist_y_gap_expected,
        timestamp '1970-01-01'
        + series.row_values[series_row.i][{{ slot.ds_us }}] * interval '1 microsecond' as ds,
        nullif(series.row_values[series_row.i][{{ slot.co }}], 'NaN') as co,
        series.row_values[series_row.i][{{ slot.y }}] as y,
        series.row_values[series_row.i][{{ slot.running_max }}] as running_max,
        series.row_values[series_row.i][{{ slot.running_min }}] as running_min,
        series.row_values[series_row.i][{{ slot.co_var_n }}] as co_var_n,
        {{ array_window_sum('series.row_values', 'series_row.i', fixed_window, slot.co_sum) }} as co_sum,
        {{ array_window_sum('series.row_values', 'series_row.i', fixed_window, slot.co_y_sum) }} as co_y_sum,
        {%- for k in fetched_lags %}
            series.y_values[series_row.i - {{ k }}] as y_lag{{ k }},
        {%- endfor %}
        {%- for w in moment_windows %}
            {{ array_window_sum('series.row_values', 'series_row.i', w, slot.y_sum) }} as y_sum_w{{ w }},
            {{ array_window_sum('series.row_values', 'series_row.i', w, slot.y_sq_sum) }} as y_sq_sum_w{{ w }},
            {%- for p in powers %}
                {{ array_window_sum('series.row_values', 'series_row.i', w, slot['y_pow' ~ p ~ '_sum']) }}
                    as y_pow{{ p }}_sum_w{{ w }},
            {%- endfor %}
        {%- endfor %}
        {%- for w in windows %}
            {{ array_rolling_extreme('greatest', 'series.y_max_block', 'series.y_values', 'series_row.i', w) }}
                as y_max_w{{ w }},
            {{ array_rolling_extreme('least', 'series.y_min_block', 'series.y_values', 'series_row.i', w) }}
                as y_min_w{{ w }},
        {%- endfor %}
        -- Slope: sum of index * y over the window.
        {{ array_window_sum('series.row_values', 'series_row.i', fixed_window, slot.index_y_sum) }} as index_y_sum,
        -- Autocorrelation: the pairs (y_t, y_t-1) with both rows in the window, t = the last
        -- window - 1 rows; "lead" is y_t, "lag" y_t-1.
        {{ array_window_sum('series.row_values', 'series_row.i', fixed_window - 1, slot.y_sum) }} as lead_sum,
        {{ array_window_sum('series.row_values', 'series_row.i', fixed_window - 1, slot.y_sq_sum) }} as lead_sq_sum,
        {{ array_window_sum('series.row_values', 'series_row.i - 1', fixed_window - 1, slot.y_sum) }} as lag_sum,
        {{ array_window_sum('series.row_values', 'series_row.i - 1', fixed_window - 1, slot.y_sq_sum) }} as lag_sq_sum,
        {{ array_window_sum('series.row_values', 'series_row.i', fixed_window - 1, slot.lag_cross_sum) }} as cross_sum
    from series_level as series
    cross join
        lateral generate_series(series.n_rows_kept + 1, series.n_rows) as series_row (i)
    offset 0  -- noqa: AM09
{%- endmacro %}
