-- One row per (loto, unique_id, ds) of stg_lottery__draws: the point-in-time features of
-- each series (lags, rolling moments and extremes, trend, autocorrelation), the lottery-level
-- counts of int_hist__draw_level, and the columns the Python job writes to
-- py_features_hist (rolling median and quartiles, matrix profile, isolation forest; NULL
-- until that job has run). After the imports, each step is a macro of
-- macros/marts/features_hist/ whose header says what it computes and which CTEs it reads.
--
-- How it stays fast (bench/: `make bench` times it against pandas and polars round trips):
--   * Two window passes in row space, over one series' rows in ds order, O(1) per row,
--     give the row index, lag 1, expanding extremes and prefix sums.
--   * The rows are then folded into one array per series; every lag and window is an O(1)
--     array subscript: window sums are differences of prefix sums, rolling min/max come from
--     a doubling (sparse-table) scheme of block extremes.
--   * For whole numbers the prefix sums, window sums and centred sums are exact in double
--     precision as long as they stay below 2^53 (any lottery): zero variances are exactly zero
--     and only the final ratios round. A series holding a non-integer y, or whole numbers
--     large enough for a prefix sum to pass 2^53 (hist_needs_exact_sums), takes its window
--     moments from exact_moments instead (numeric, rounded once). Where the prefix sums are
--     exact both ways give the same values, so the way a series takes never shows in its
--     columns. Lotteries never enter that path.
--   * `offset 0` keeps the planner from inlining a subquery whose columns the next step uses
--     many times, which would evaluate the same subscripts once per use. The row estimates
--     after the arrays are guesses, so merge joins (which would sort a million wide rows)
--     are switched off for this model: the joins are hash joins.
--   * Two statements, so that the second runs in parallel workers (PostgreSQL runs no window
--     function in one): the pre-hooks stage one row per series (features_hist_series_draws:
--     the rows to compute, gathered into arrays) in an unlogged table and create a function
--     that returns the rows of one staged series (its window passes and fold, then
--     features_hist_row_moment_steps); the select below scans the staged series in parallel,
--     each worker calling the function and joining its rows. Window functions inside a
--     function run in the worker that calls it. The staged objects are dropped before the
--     transaction commits
--     (macros/marts/features_hist/features_hist_stage.sql). The table is created by
--     CREATE TABLE AS (macros/marts/postgres__create_table_as.sql): INSERT ... SELECT gets no
--     parallel workers. A unit test, which runs no hooks, gets both halves in one select.
--
-- Incremental: a run finds, per series, the first row whose stored values are out of date
-- (a new or deleted draw, a draw whose date moved, a corrected y or carry-over, a lottery-level
-- count or draw-level column that a corrected draw of the lottery changed, a corrected prize,
-- a changed positions seed, or Python-job values that changed since the row was merged: the
-- job may run after this model; see joined_columns in features_hist_params and
-- features_hist_changed_draws)
-- and recomputes that row and every later one of the series, from a lookback of
-- var('incremental_lookback_rows') earlier rows; the expanding max/min come from every earlier
-- row. Only those rows are merged, and the post-hook deletes the rows of draws that are no
-- longer staged. The marts then equal a full refresh. int_hist__draw_domain is rebuilt in
-- full on every run.
-- The materialization is set here rather than for the marts folder: the other marts are
-- whole-history tables. The table is logged, so it survives a crash like any other. With
-- var('features_hist_unlogged') true it is unlogged instead: a full build skips the WAL
-- (bench/results: the time saved), but after a crash PostgreSQL empties the table; `health`
-- then reports it, `report` and `train` refuse it, and the next run rebuilds every series.
-- Its primary key is the grain, added by a first build or a full refresh after loading the
-- rows (primary_key_after_load: a primary key in the contract would be maintained row by row
-- during the load, a quarter of the model's time); the merges of incremental runs find their
-- rows through its index.
{{
    config(
        materialized='incremental',
        unique_key=['loto', 'unique_id', 'ds'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        unlogged=var('features_hist_unlogged', false),
        pre_hook=[
            "set local work_mem = '256MB'",
            "set local jit = off",
            "set local enable_mergejoin = off",
            "{{ features_hist_stage_series() }}",
            "{{ features_hist_load_stage() }}",
        ],
        post_hook=[
            "{{ features_hist_drop_stage() }}",
            "{{ primary_key_after_load(['loto', 'unique_id', 'ds']) }}",
            "{{ features_hist_delete_unstaged_rows() }}",
        ],
    )
}}

{%- set params = features_hist_params() %}

with

{{ features_hist_imports() }},

{% if features_hist_staged() %}

    row_moments as (
        -- Every row the run writes, with its windows and moments: the series staged by the
        -- pre-hooks, each computed by the staged function, in parallel workers.
        {{ features_hist_staged_rows() }}
    ),

{% else %}

    {{ features_hist_series_fold(params) }},

    {{ features_hist_row_moment_steps(params) }},

{% endif %}

final as (
    {{ features_hist_final(
        params.lags, params.windows, params.diffs, params.pct_changes, params.fixed_window, params.domain_columns
    ) }}
)

select * from final
