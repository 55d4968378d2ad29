-- One row per snapshot (loto, unique_id, as_of) of each series: the last row of every calendar
-- period (var('stat_snapshot_cadence'), macro stat_snapshot_period_start), the series' latest
-- row included, with the moments of y over the rows with ds <= as_of, as pandas gives them on
-- the series cut there: mean, std (ddof=1), min, max, skew() (adjusted Fisher-Pearson G1) and
-- kurt() (bias-corrected excess kurtosis G2).
-- Fast at any cadence: the rows are summed per period of each series (one pass, no sort of
-- the rows, parallel workers where the server has them), and the periods' sums are then
-- accumulated in time order, a few rows per series.
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

period_sums as (
    -- Products rather than `^`: numeric multiplication is exact, `^` on integers is not.
    select
        draws.loto,
        draws.unique_id,
        {{ stat_snapshot_period_start('draws.ds') }} as period_start,
        max(draws.ds) as as_of,
        count(*) as n_rows,
        min(draws.y) as y_min,
        max(draws.y) as y_max,
        sum(draws.y) as sum_y1,
        sum(draws.y * draws.y) as sum_y2,
        sum(draws.y * draws.y * draws.y) as sum_y3,
        sum(draws.y * draws.y * draws.y * draws.y) as sum_y4
    from draws
    group by
        draws.loto,
        draws.unique_id,
        {{ stat_snapshot_period_start('draws.ds') }}
),

power_sums as (
    -- Each snapshot (the last row of its period) with the sums over the rows up to it.
    -- Numeric sums are exact, so the running totals equal the sums over each prefix.
    select
        period_sums.loto,
        period_sums.unique_id,
        period_sums.as_of,
        sum(period_sums.n_rows) over running as n_rows,
        min(period_sums.y_min) over running as y_min,
        max(period_sums.y_max) over running as y_max,
        sum(period_sums.sum_y1) over running as sum_y1,
        sum(period_sums.sum_y2) over running as sum_y2,
        sum(period_sums.sum_y3) over running as sum_y3,
        sum(period_sums.sum_y4) over running as sum_y4
    from period_sums
    window running as (
        partition by period_sums.loto, period_sums.unique_id
        order by period_sums.period_start
        rows between unbounded preceding and current row
    )
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
        central_sums.y_min::double precision as y_min,
        central_sums.y_max::double precision as y_max,
        central_sums.n_m2::double precision as n_m2,
        central_sums.n2_m3::double precision as n2_m3,
        central_sums.n3_m4::double precision as n3_m4,
        -- avg's and stddev_samp's own arithmetic: S1 / n, and sqrt(n M2 / (n (n - 1))) from
        -- the exact n M2, each rounded once.
        (central_sums.sum_y1 / central_sums.n_rows)::double precision as y_mean,
        case
            when central_sums.n_rows > 1
                then sqrt(central_sums.n_m2 / (central_sums.n_rows * (central_sums.n_rows - 1)))::double precision
        end as y_std
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
