-- One row per (loto, unique_id, ds) of stg_lottery__draws: the point-in-time features of
-- each series (lags, rolling moments and extremes, trend, autocorrelation), the lottery-level
-- counts of int_hist__draw_level, and the columns the Python job writes to
-- py_features_hist (rolling median and quartiles, matrix profile, isolation forest; NULL
-- until that job has run).
--
-- How it stays fast (bench/: `make bench` times it against a pandas round trip):
--   * Two window passes in row space, in the order of the staging table's unique index (no
--     sort), give the row index, lag 1, the expanding extremes, prefix sums of y, y^2,
--     index * y, y * lag1, co and co * y, and the carry-over's exact (numeric) sum of squares
--     over a moving frame. Every one of them costs O(1) per row.
--   * The rows are then folded into one array per series; every lag and window is an O(1)
--     array subscript: window sums are differences of prefix sums, rolling min/max come from
--     a doubling (sparse-table) scheme of block extremes.
--   * For whole numbers the prefix sums, window sums and centred sums are exact in double
--     precision as long as they stay below 2^53 (any lottery; the singular test
--     hist_y_sums_exact checks it): zero variances are exactly zero and only the final
--     ratios round. A series holding a non-integer y (prices, a user's measurements) takes
--     its window moments from exact_moments instead: numeric moving sums, centred in numeric
--     and rounded once. Lotteries never enter that path (its filter finds no row of theirs),
--     so their columns are those of the double precision path, bit for bit.
--   * `offset 0` keeps the planner from inlining a subquery whose columns the next step uses
--     many times, which would evaluate the same subscripts once per use. The row estimates
--     after the arrays are guesses, so merge joins (which would sort a million wide rows)
--     are switched off for this model: the joins are hash joins.
--
-- Incremental: a run finds, per series, the first row whose stored values are out of date
-- (a new or deleted draw, a draw whose date moved, a corrected y or carry-over, a lottery-level
-- count or draw-level column that a corrected draw of the lottery changed, a corrected prize,
-- a changed positions seed, or Python-job values that changed since the row was merged: the
-- job may run after this model; see joined_columns below) and
-- recomputes that row and every later one of the series, from a lookback of
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
{#- The largest |co| whose square fits in a bigint: floor(sqrt(2^63 - 1)). -#}
{%- set max_exact_square = 3037000499 -%}
{%- set moment_windows = (windows + [fixed_window]) | unique | sort -%}
{%- set fetched_lags = (lags + diffs + pct_changes) | unique | sort -%}
{%- set block_sizes = rolling_extreme_block_sizes(windows) -%}
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

decimal_draws as not materialized (
    -- The draws read a second time, by exact_sums: only the rows of series holding a
    -- non-integer y pass its filter (a lottery's draws never do).
    select * from {{ ref('stg_lottery__draws') }}
),

py_hist as not materialized (
    -- Read where it is joined (twice in an incremental run) rather than copied once.
    select * from {{ ref('stg_python__features_hist') }}
),

{% if is_incremental() %}

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
    ),

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
),

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
),

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
),

row_windows as (
    -- Back to one row per draw, for the rows this run writes (the last ones of each series),
    -- with every lag and window of the row by subscript: i is the row's index in its series.
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
),

decimal_series as (
    -- The series holding a non-integer y (prices, a user's measurements): their double
    -- precision prefix sums are not exact, so their window moments come from exact_moments.
    select distinct
        decimal_draws.loto,
        decimal_draws.unique_id
    from decimal_draws
    where {{ hist_has_fraction('decimal_draws.y') }}
),

decimal_rows as (
    select
        decimal_draws.loto,
        decimal_draws.unique_id,
        decimal_draws.ds,
        decimal_draws.y,
        decimal_draws.co::numeric as co,
        row_number() over series_order as row_index,
        lag(decimal_draws.y) over series_order as y_lag1
    from decimal_draws
    inner join decimal_series
        on
            decimal_draws.loto = decimal_series.loto
            and decimal_draws.unique_id = decimal_series.unique_id
    window series_order as ({{ hist_series_order('decimal_draws') }})
),

exact_sums as (
    -- The window sums of those series in numeric, exact for any decimal y, from moving frames
    -- (O(1) per row: numeric sums have inverse transitions). Each sum is NULL until its
    -- window is complete, as a difference of the prefix arrays is.
    select
        decimal_rows.loto,
        decimal_rows.unique_id,
        decimal_rows.ds,
        decimal_rows.y,
        decimal_rows.row_index,
        {%- for w in moment_windows %}
            {%- set frame = 'w' ~ w %}
            {%- set full = 'count(*) over ' ~ frame ~ ' = ' ~ w %}
            case when {{ full }} then sum(decimal_rows.y) over {{ frame }} end as y_sum_w{{ w }},
            case when {{ full }} then sum(decimal_rows.y * decimal_rows.y) over {{ frame }} end as y_sq_sum_w{{ w }},
            {%- for p in powers %}
                case when {{ full }} then sum({{ (['decimal_rows.y'] * p) | join(' * ') }}) over {{ frame }} end
                    as y_pow{{ p }}_sum_w{{ w }},
            {%- endfor %}
        {%- endfor %}
        sum(decimal_rows.row_index * decimal_rows.y) over w{{ fixed_window }} as index_y_sum,
        -- Lag-1 pairs of the last window - 1 rows, complete where the lag of the earliest is known.
        case
            when count(decimal_rows.y_lag1) over lead_frame = {{ fixed_window - 1 }}
                then sum(decimal_rows.y) over lead_frame
        end as lead_sum,
        sum(decimal_rows.y * decimal_rows.y) over lead_frame as lead_sq_sum,
        sum(decimal_rows.y_lag1) over lead_frame as lag_sum,
        sum(decimal_rows.y_lag1 * decimal_rows.y_lag1) over lead_frame as lag_sq_sum,
        sum(decimal_rows.y * decimal_rows.y_lag1) over lead_frame as cross_sum,
        case
            when count(decimal_rows.co) over w{{ fixed_window }} = {{ fixed_window }}
                then
                    {{ fixed_window }} * sum(decimal_rows.co * decimal_rows.co) over w{{ fixed_window }}
                    - sum(decimal_rows.co) over w{{ fixed_window }} * sum(decimal_rows.co) over w{{ fixed_window }}
            else 0
        end as co_var_n,
        sum(decimal_rows.co) over w{{ fixed_window }} as co_sum,
        sum(decimal_rows.co * decimal_rows.y) over w{{ fixed_window }} as co_y_sum
    from decimal_rows
    window
        {%- for w in moment_windows %}
            w{{ w }} as ({{ hist_series_order('decimal_rows') }} rows between {{ w - 1 }} preceding and current row),
        {%- endfor %}
        lead_frame as (
            {{ hist_series_order('decimal_rows') }} rows between {{ fixed_window - 2 }} preceding and current row
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
),

row_moments as (
    -- Centred sums n S2 - S1^2 are exact for whole numbers (below 2^53); a series holding a
    -- non-integer y takes the exact ones of exact_moments instead. Only the ratios round.
    {%- set is_decimal = 'exact_moments.loto is not null' %}
    select
        row_windows.*,
        {%- for w in moment_windows %}
            {%- set sum_sq = 'row_windows.y_sq_sum_w' ~ w %}
            {%- set sum_y = 'row_windows.y_sum_w' ~ w %}
            {%- set var_n = w ~ ' * ' ~ sum_sq ~ ' - ' ~ sum_y ~ ' * ' ~ sum_y %}
            case
                when {{ is_decimal }} then exact_moments.y_mean_w{{ w }} else row_windows.y_sum_w{{ w }} / {{ w }}
            end as y_mean_w{{ w }},
            case
                when {{ is_decimal }} then exact_moments.y_dev_mean_w{{ w }}
                else row_windows.y - row_windows.y_sum_w{{ w }} / {{ w }}
            end as y_dev_mean_w{{ w }},
            case when {{ is_decimal }} then exact_moments.y_var_n_w{{ w }} else {{ var_n }} end as y_var_n_w{{ w }},
            sqrt(
                case when {{ is_decimal }} then exact_moments.y_var_n_w{{ w }} else ({{ var_n }}) end
                / {{ w * (w - 1) }}
            ) as y_std_w{{ w }},
            {#- n^(p-1) sum((y - mean)^p) for the higher moments of hist_window_stats() (skewness, kurtosis). #}
            {%- for p in powers if w >= p and w in windows %}
                case
                    when {{ is_decimal }} then exact_moments.y_centered_pow{{ p }}_n_w{{ w }}
                    else ({{ window_centered_power_sum('row_windows', w, p) }})::double precision
                end as y_centered_pow{{ p }}_n_w{{ w }},
            {%- endfor %}
        {%- endfor %}
        -- Least squares on the row index t over the window: the index sums are those of the
        -- window's n consecutive integers, n sum(t^2) - sum(t)^2 = n^2 (n^2 - 1) / 12.
        case
            when {{ is_decimal }} then exact_moments.trend_slope
            else (
                {{ fixed_window }} * row_windows.index_y_sum
                - ({{ fixed_window }} * row_windows.i - {{ (fixed_window * (fixed_window - 1) / 2) | int }})
                * row_windows.y_sum_w{{ fixed_window }}
            ) / {{ (fixed_window * fixed_window * (fixed_window * fixed_window - 1) / 12) | int }}
        end as trend_slope,
        case
            when {{ is_decimal }} then exact_moments.autocorr1
            else {{ pearson_from_centered_sums(
                (fixed_window - 1) ~ ' * row_windows.cross_sum - row_windows.lead_sum * row_windows.lag_sum',
                (fixed_window - 1) ~ ' * row_windows.lead_sq_sum - row_windows.lead_sum * row_windows.lead_sum',
                (fixed_window - 1) ~ ' * row_windows.lag_sq_sum - row_windows.lag_sum * row_windows.lag_sum',
            ) }}
        end as autocorr1,
        case
            when {{ is_decimal }} then exact_moments.co_corr
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
),

final as (
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
)

select * from final
