{#-
    features_hist, series space.
    features_hist_series_arrays: the rows of series_prefix folded into one row per series
    (series_arrays: row_values, one row of the `row_slots` values per draw, and y_values).
    Reads series_prefix; defines series_arrays.
    features_hist_series_blocks: the doubling steps of block maxima and minima that the rolling
    extremes of `windows` read (series_blocks<size>, one per size of
    rolling_extreme_block_sizes), then the series' expected gap (series_level). Reads
    series_arrays and position_gap_expected; defines series_blocks<size> ..., series_level.
    Usage: {{ features_hist_series_arrays(row_slots) }}, {{ features_hist_series_blocks(windows) }},
-#}
{% macro features_hist_series_arrays(row_slots) -%}
    series_arrays as (
        -- One row per series. row_values is two-dimensional, one row of values per draw in ds
        -- order, indexed from 0: row i holds the i-th draw and row 0 zeros, the prefix sums of no
        -- rows. y_values holds y alone, indexed from 1, for lags and the doubling blocks.
        select
            series_prefix.loto,
            series_prefix.unique_id,
            count(*)::integer as n_rows,
            (count(*) filter (where not series_prefix.is_emitted))::integer as n_rows_kept,
            array_fill(0::double precision, array[1, {{ row_slots | length }}], array[0, 1]) || array_agg(
                array[
                    {%- for name in row_slots %}
                        series_prefix.{{ name }}{% if not loop.last %},{% endif %}
                    {%- endfor %}
                ] order by series_prefix.row_index
            ) as row_values,
            array_agg(series_prefix.y order by series_prefix.row_index) as y_values
        from series_prefix
        group by
            series_prefix.loto,
            series_prefix.unique_id
    )
{%- endmacro %}


{% macro features_hist_series_blocks(windows) -%}
    {%- set block_sizes = rolling_extreme_block_sizes(windows) %}
    {%- set previous = namespace(
        relation='series_arrays',
        max_source='series_arrays.y_values',
        min_source='series_arrays.y_values',
        step=1,
    ) %}
    {%- for size in block_sizes %}

        series_blocks{{ size }} as (
            -- Doubling step: blocks of {{ size }} rows from two blocks of {{ previous.step }}.
            select
                {{ previous.relation }}.*,
                doubled.y_max_block{{ size }},
                doubled.y_min_block{{ size }}
            from {{ previous.relation }}
            cross join
                lateral (
                {{ array_doubling_extremes(
                    previous.max_source,
                    previous.min_source,
                    previous.step,
                    previous.relation ~ '.n_rows',
                    'y_max_block' ~ size,
                    'y_min_block' ~ size,
                ) }}
                ) as doubled
            offset 0  -- noqa: AM09
        ),
        {%- set previous.max_source = 'series_blocks' ~ size ~ '.y_max_block' ~ size %}
        {%- set previous.min_source = 'series_blocks' ~ size ~ '.y_min_block' ~ size %}
        {%- set previous.relation = 'series_blocks' ~ size %}
        {%- set previous.step = size %}
    {%- endfor %}

    series_level as (
        -- The arrays of each series with its position's expected gap: joined once per series.
        select
            series.*,
            position_gap_expected.hist_y_gap_expected
        from {{ previous.relation }} as series
        left join position_gap_expected
            on
                series.loto = position_gap_expected.loto
                and series.unique_id = position_gap_expected.unique_id
        offset 0  -- noqa: AM09
    )
{%- endmacro %}
