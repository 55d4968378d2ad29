-- One row per snapshot (loto, unique_id, as_of) of each series: the last row of every calendar
-- period (var('stat_snapshot_cadence'), macro stat_snapshot_period_start), the series' latest
-- row included, with the moments of y over the rows with ds <= as_of, as pandas gives them on
-- the series cut there: mean, std (ddof=1), min, max, skew() (adjusted Fisher-Pearson G1) and
-- kurt() (bias-corrected excess kurtosis G2).
-- Fast at any cadence: the aggregates run along each series once (running windows, which
-- PostgreSQL extends row by row instead of restarting), and only the snapshot rows are kept.
-- Skewness and kurtosis come from the power sums S1..S4 of y, kept in numeric: the central
-- sums n M2 = n S2 - S1^2, n^2 M3 and n^3 M4 are then exact for any numeric y, and only the
-- final ratios are taken in double precision. NULL where pandas gives NaN: fewer than 3 (4)
-- rows, or a constant series.
-- Analysed when built: features_stat_history joins the intermediates on (loto, unique_id,
-- as_of), and without statistics PostgreSQL guesses one row per join and nests loops over
-- every snapshot (minutes on a panel of 10,000 snapshots instead of a second).
{{ config(post_hook=['analyze {{ this }}']) }}

with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

running_sums as (
    -- Products rather than `^`: numeric multiplication is exact, `^` on integers is not.
    -- Numeric sums are exact, so each running value equals the aggregate over its prefix.
    select
        draws.loto,
        draws.unique_id,
        draws.ds as as_of,
        {{ stat_snapshot_period_start('draws.ds') }} as period_start,
        lead({{ stat_snapshot_period_start('draws.ds') }}) over by_ds as next_period_start,
        count(*) over running::numeric as n_rows,
        avg(draws.y) over running as y_mean,
        stddev_samp(draws.y) over running as y_std,
        min(draws.y) over running as y_min,
        max(draws.y) over running as y_max,
        sum(draws.y) over running as sum_y1,
        sum(draws.y * draws.y) over running as sum_y2,
        sum(draws.y * draws.y * draws.y) over running as sum_y3,
        sum(draws.y * draws.y * draws.y * draws.y) over running as sum_y4
    from draws
    window
        by_ds as (partition by draws.loto, draws.unique_id order by draws.ds),
        running as (by_ds rows between unbounded preceding and current row)
),

power_sums as (
    -- The last row of its period (the next row starts another one, or there is none).
    select running_sums.*
    from running_sums
    where running_sums.next_period_start is distinct from running_sums.period_start
),

central_sums as (
    select
        power_sums.*,
        power_sums.n_rows * power_sums.sum_y2 - power_sums.sum_y1 * power_sums.sum_y1 as n_m2,
        power_sums.n_rows * power_sums.n_rows * power_sums.sum_y3
        - 3 * power_sums.n_rows * power_sums.sum_y1 * power_sums.sum_y2
        + 2 * power_sums.sum_y1 * power_sums.sum_y1 * power_sums.sum_y1 as n2_m3,
        power_sums.n_rows * power_sums.n_rows * power_sums.n_rows * power_sums.sum_y4
        - 4 * power_sums.n_rows * power_sums.n_rows * power_sums.sum_y1 * power_sums.sum_y3
        + 6 * power_sums.n_rows * power_sums.sum_y1 * power_sums.sum_y1 * power_sums.sum_y2
        - 3 * power_sums.sum_y1 * power_sums.sum_y1 * power_sums.sum_y1 * power_sums.sum_y1 as n3_m4
    from power_sums
),

in_double as (
    -- Exact central sums rounded once; everything after this is double precision, like pandas.
    select
        central_sums.loto,
        central_sums.unique_id,
        central_sums.as_of,
        central_sums.n_rows::integer as n_rows,
        central_sums.n_rows::double precision as n,
        central_sums.y_mean::double precision as y_mean,
        central_sums.y_std::double precision as y_std,
        central_sums.y_min::double precision as y_min,
        central_sums.y_max::double precision as y_max,
        central_sums.n_m2::double precision as n_m2,
        central_sums.n2_m3::double precision as n2_m3,
        central_sums.n3_m4::double precision as n3_m4
    from central_sums
),

final as (
    select
        in_double.loto,
        in_double.unique_id,
        in_double.as_of,
        in_double.n_rows,
        in_double.y_mean,
        in_double.y_std,
        in_double.y_min,
        in_double.y_max,
        -- G1 = sqrt(n (n - 1)) / (n - 2) * m3 / m2^1.5 with m_k the k-th central moment
        case
            when in_double.n_rows >= 3 and in_double.n_m2 > 0
                then
                    sqrt(in_double.n * (in_double.n - 1)) / (in_double.n - 2)
                    * in_double.n2_m3 / power(in_double.n_m2, 1.5)
        end as y_skewness,
        -- G2 = (n + 1) (n - 1) / ((n - 2) (n - 3)) * m4 / m2^2 - 3 (n - 1)^2 / ((n - 2) (n - 3))
        case
            when in_double.n_rows >= 4 and in_double.n_m2 > 0
                then
                    (
                        (in_double.n + 1) * (in_double.n - 1) * in_double.n3_m4
                        / (in_double.n_m2 * in_double.n_m2)
                        - 3 * (in_double.n - 1) * (in_double.n - 1)
                    )
                    / ((in_double.n - 2) * (in_double.n - 3))
        end as y_kurtosis
    from in_double
)

select * from final
