{#-
    features_hist, incremental runs: which stored rows are out of date, and the draws to
    recompute. Per series, the first row whose stored values differ from what the inputs now
    give (a new, deleted or moved draw, a corrected y or carry-over, or a changed value of
    any column in joined_columns, compared with the relation named beside it) marks that row
    and every later one as emitted; series_draws then holds those rows and the `lookback`
    rows before them, with the expanding max/min of every earlier row. y is compared as each
    stored row was built: its lag `check_lag` on the row `check_lag` rows later.
    Reads: {{ this }} (the stored rows) and the model's CTEs draws, draw_level, draw_prizes,
    prize_correlation, position_gap_expected and py_hist.
    Defines: stored_rows, row_changes, series_changes, flagged_draws, positioned_draws,
    series_draws (loto, unique_id, ds, y, co, is_emitted, earlier_y_max, earlier_y_min).
    Usage: {{ features_hist_changed_draws(joined_columns, check_lag, lookback) }},
-#}
{% macro features_hist_changed_draws(joined_columns, check_lag, lookback) -%}
    stored_rows as (
        -- The stored rows, narrowed to what the checks below read, with y as each row was
        -- built: lag k of the row k rows later (the last k rows of a series have none and are
        -- always recomputed).
        select
            merged.loto,
            merged.unique_id,
            merged.ds,
            merged.hist_co,
            {%- for column in joined_columns %}
                merged.{{ column }},
            {%- endfor %}
            lead(merged.hist_y_lag{{ check_lag }}, {{ check_lag }}) over (
                {{ hist_series_order('merged') }}
            ) as y_as_built
        from {{ this }} as merged
    ),

    row_changes as (
        -- Every key stored or staged, and whether its stored row is out of date: the draw was
        -- deleted or moved, or is new; its y or carry-over was corrected; or a joined column
        -- changed: a lottery-level count or gap statistic (a draw of the lottery was
        -- corrected), the draw's prizes or the prize correlation (a prize was corrected), the
        -- expected gap (the positions seed changed), or the Python job's values (the job may
        -- run after this model).
        select
            coalesce(stored_rows.loto, draws.loto) as loto,
            coalesce(stored_rows.unique_id, draws.unique_id) as unique_id,
            coalesce(stored_rows.ds, draws.ds) as ds,
            (
                stored_rows.loto is null
                or draws.loto is null
                or stored_rows.y_as_built is distinct from draws.y::double precision
                or stored_rows.hist_co is distinct from draws.co
                {%- for column, relation in joined_columns.items() %}
                    or stored_rows.{{ column }} is distinct from {{ relation }}.{{ column }}
                {%- endfor %}
            ) as is_changed
        from stored_rows
        full outer join draws
            on
                stored_rows.loto = draws.loto
                and stored_rows.unique_id = draws.unique_id
                and stored_rows.ds = draws.ds
        left join draw_level
            on
                draws.loto = draw_level.loto
                and draws.ds = draw_level.ds
                and draws.y::double precision = draw_level.y
        left join draw_prizes
            on
                draws.loto = draw_prizes.loto
                and draws.ds = draw_prizes.ds
        left join prize_correlation
            on
                draws.loto = prize_correlation.loto
                and draws.unique_id = prize_correlation.unique_id
                and draws.ds = prize_correlation.ds
        left join position_gap_expected
            on
                draws.loto = position_gap_expected.loto
                and draws.unique_id = position_gap_expected.unique_id
        left join py_hist
            on
                draws.loto = py_hist.loto
                and draws.unique_id = py_hist.unique_id
                and draws.ds = py_hist.ds
    ),

    series_changes as (
        -- Per series, the first changed row: it and every later row are recomputed.
        select
            row_changes.loto,
            row_changes.unique_id,
            min(row_changes.ds) as changed_from_ds
        from row_changes
        where row_changes.is_changed
        group by
            row_changes.loto,
            row_changes.unique_id
    ),

    flagged_draws as (
        select
            draws.loto,
            draws.unique_id,
            draws.ds,
            draws.y,
            draws.co,
            coalesce(draws.ds >= series_changes.changed_from_ds, false) as is_emitted
        from draws
        left join series_changes
            on
                draws.loto = series_changes.loto
                and draws.unique_id = series_changes.unique_id
    ),

    positioned_draws as (
        -- For each row not recomputed: how many such rows it is from the first recomputed one
        -- (1 = just before). The expanding max/min run over every row, read or not.
        select
            flagged_draws.*,
            count(*) filter (where not flagged_draws.is_emitted) over series_rows
            - count(*) filter (where not flagged_draws.is_emitted) over series_order
            + case when flagged_draws.is_emitted then 0 else 1 end as rows_before_emitted,
            max(flagged_draws.y) over series_order as running_max,
            min(flagged_draws.y) over series_order as running_min
        from flagged_draws
        window
            series_rows as (partition by flagged_draws.loto, flagged_draws.unique_id),
            series_order as (
                {{ hist_series_order('flagged_draws') }} rows between unbounded preceding and current row
            )
    ),

    series_draws as (
        -- The rows to recompute and the lookback before them.
        select
            positioned_draws.loto,
            positioned_draws.unique_id,
            positioned_draws.ds,
            positioned_draws.y::double precision as y,
            positioned_draws.co,
            positioned_draws.is_emitted,
            positioned_draws.running_max::double precision as earlier_y_max,
            positioned_draws.running_min::double precision as earlier_y_min
        from positioned_draws
        where positioned_draws.rows_before_emitted <= {{ lookback }}
    )
{%- endmacro %}
