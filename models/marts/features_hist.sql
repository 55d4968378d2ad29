-- One row per (loto, unique_id, ds) of stg_lottery__draws: the point-in-time features of
-- each series (lags, rolling moments and extremes, trend, autocorrelation), the lottery-level
-- counts of int_hist__draw_level, and the columns the Python job writes to
-- py_features_hist (rolling median and quartiles, matrix profile, isolation forest; NULL
-- until that job has run). After the imports, each step is a macro of
-- macros/marts/features_hist/ whose header says what it computes and which CTEs it reads.
--
-- How it stays fast (bench/: `make bench` times it against a pandas round trip):
--   * Two window passes in row space, in the order of the staging table's unique index (no
--     sort), O(1) per row, give the row index, lag 1, expanding extremes and prefix sums.
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
--
-- Incremental: a run finds, per series, the first row whose stored values are out of date
-- (a new or deleted draw, a draw whose date moved, a corrected y or carry-over, a lottery-level
-- count or draw-level column that a corrected draw of the lottery changed, a corrected prize,
-- a changed positions seed, or Python-job values that changed since the row was merged: the
-- job may run after this model; see joined_columns below and features_hist_changed_draws)
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
        ],
        post_hook=[
            "{{ primary_key_after_load(['loto', 'unique_id', 'ds']) }}",
            "{{ features_hist_delete_unstaged_rows() }}",
        ],
    )
}}

{%- set windows = hist_int_var('windows', [3, 7]) | list -%}
{%- set lags = hist_int_var('lags', [1, 7]) | list -%}
{%- set diffs = hist_int_var('diffs', [1]) | list -%}
{%- set pct_changes = hist_int_var('pct_changes', [1]) | list -%}
{%- set lookback = hist_int_var('incremental_lookback_rows', 160) -%}
{#- The outlier, trend, autocorrelation and carry-over columns use one window of var('stat_window') rows. -#}
{%- set fixed_window = hist_int_var('stat_window', 30) -%}
{%- set moment_windows = (windows + [fixed_window]) | unique | sort -%}
{%- set fetched_lags = (lags + diffs + pct_changes) | unique | sort -%}
{#- The lottery-level columns of int_hist__draw_domain, in the order of the mart (and of the
    online engine: generated from python_jobs/realtime/domain.py). -#}
{%- set domain_columns = hist_draw_domain_columns() -%}
{#- Every column the mart takes from a joined model rather than computing it from the series'
    own rows, with the relation that holds its current value. An incremental run compares each
    stored row's values with these: a correction of any input they come from (draws, prizes,
    the positions seed, the Python job's table) reaches every row it changed. A column joined
    into the final select must be listed here, or an incremental run would keep it stale. -#}
{%- set joined_columns = {} -%}
{%- for column in domain_columns + ['hist_y_gap_mean', 'hist_y_gap_std'] -%}
    {%- do joined_columns.update({column: 'draw_level'}) -%}
{%- endfor -%}
{%- for column in ['hist_draw_prize1_winners', 'hist_draw_prize1_payout', 'hist_draw_payout_total'] -%}
    {%- do joined_columns.update({column: 'draw_prizes'}) -%}
{%- endfor -%}
{%- do joined_columns.update({
    'hist_y_prize1_corr_w' ~ hist_int_var('stat_window', 30): 'prize_correlation',
    'hist_y_gap_expected': 'position_gap_expected',
}) -%}
{%- for column in py_hist_columns() -%}
    {%- do joined_columns.update({column: 'py_hist'}) -%}
{%- endfor -%}
{#- The per-row values folded into series_arrays.row_values, one named slot each, numbered from 1
    in this order: every read says which value it takes (row_values[i][slot.y_sum]). -#}
{%- set row_slots = [
    'y', 'y_sum', 'y_sq_sum', 'index_y_sum', 'lag_cross_sum', 'running_max', 'running_min',
    'co', 'co_sum', 'co_y_sum', 'co_var_n', 'ds_us',
] -%}
{#- Prefix sums of y^3, y^4 ... as far as a rolling statistic reads them (hist_window_max_power()). -#}
{%- set powers = range(3, hist_window_max_power() + 1) | list -%}
{%- for p in powers -%}
    {%- do row_slots.append('y_pow' ~ p ~ '_sum') -%}
{%- endfor -%}
{%- set slot = {} -%}
{%- for name in row_slots -%}
    {%- do slot.update({name: loop.index}) -%}
{%- endfor -%}
{#- An incremental run reads y as each stored row was built from the shortest lag. -#}
{%- set check_lag = lags | min -%}
{%- if windows | min < hist_smallest_window() -%}
    {{ exceptions.raise_compiler_error(
        "features_hist: every window needs at least " ~ hist_smallest_window() ~ " rows (std), got " ~ windows
    ) }}
{%- endif -%}
{%- if lags | length == 0 -%}
    {{ exceptions.raise_compiler_error("features_hist: var('lags') needs at least one lag") }}
{%- endif -%}
{%- if lookback < [windows | max, fetched_lags | max, fixed_window] | max -%}
    {{ exceptions.raise_compiler_error("features_hist: incremental_lookback_rows (" ~ lookback ~ ") is shorter than the longest window or lag") }}
{%- endif %}

with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

draw_level as (
    -- One row per (loto, ds, y) of a lottery: its lottery-level counts and gap statistics.
    select * from {{ ref('int_hist__draw_level') }}
),

draw_prizes as (
    select * from {{ ref('int_hist__draw_prizes') }}
),

prize_correlation as (
    select * from {{ ref('int_hist__prize_correlation') }}
),

position_gap_expected as (
    select * from {{ ref('int_hist__position_gap_expected') }}
),

exact_draws as not materialized (
    -- The draws read a second time, by exact_series and exact_rows: only the rows of series
    -- that need exact sums go on past exact_series (a lottery's draws never do).
    select * from {{ ref('stg_lottery__draws') }}
),

py_hist as not materialized (
    -- Read where it is joined (twice in an incremental run) rather than copied once.
    select * from {{ ref('stg_python__features_hist') }}
),

{% if is_incremental() %}

    {# Which stored rows are out of date: stored_rows, row_changes, series_changes,
        flagged_draws, positioned_draws, then series_draws, the rows to recompute and their
        lookback. #}
    {{ features_hist_changed_draws(joined_columns, check_lag, lookback) }},

{% else %}

    series_draws as (
        select
            draws.loto,
            draws.unique_id,
            draws.ds,
            draws.y::double precision as y,
            draws.co,
            true as is_emitted,
            null::double precision as earlier_y_max,
            null::double precision as earlier_y_min
        from draws
    ),

{% endif %}

{# Row space, two window passes: series_running, then series_prefix (prefix sums). #}
{{ features_hist_row_passes(fixed_window, powers) }},

{# Series space: series_arrays (one row per series), series_blocks<size> (doubling steps of
    the rolling extremes), series_level (with the expected gap). #}
{{ features_hist_series_arrays(row_slots, windows) }},

row_windows as (
    -- Back to one row per draw, for the rows this run writes (the last ones of each series),
    -- with every lag and window of the row by subscript: i is the row's index in its series.
    {{ features_hist_row_windows(slot, windows, moment_windows, fetched_lags, powers, fixed_window) }}
),

{# Series that need exact sums: exact_series, exact_rows, exact_sums, exact_moments. #}
{{ features_hist_exact_moments(windows, moment_windows, powers, fixed_window) }},

row_moments as (
    -- Centred sums n S2 - S1^2 are exact for whole numbers (below 2^53); a series that needs
    -- exact sums takes the exact ones of exact_moments instead. Only the ratios round.
    {{ features_hist_row_moments(windows, moment_windows, powers, fixed_window) }}
),

final as (
    {{ features_hist_final(lags, windows, diffs, pct_changes, fixed_window, domain_columns) }}
)

select * from final
