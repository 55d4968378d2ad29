-- One row per snapshot (loto, unique_id, as_of) of the series of lotteries with prize data in
-- stg_lottery__prizes (snapshots as int_stat__moments_aggregated lists them), over the rows
-- with ds <= as_of:
--   stat_prize1_hit_share: share of the lottery's draws with prize data that had a tier-1 winner;
--   stat_prize1_payout_mean, stat_prize1_payout_median: mean and median of the tier-1 payout
--     (winners x prize, 0 where nobody won) over those draws;
--   stat_y_prize1_corr: Pearson correlation of y and the tier-1 payout over the rows of the
--     series that have prize data (NULL where either side is constant).
-- A snapshot without prize data up to as_of has no row, so features_stat_history shows NULL.
-- The correlation runs along each series once (a running window; corr() skips the rows
-- without prize data); the lottery's statistics are aggregated once per distinct as_of of the
-- lottery, over its draws with prize data (a few thousand per lottery).

-- Analysed when built: features_stat_history joins the intermediates on (loto, unique_id,
-- as_of), and without statistics PostgreSQL guesses one row per join and nests loops over
-- every snapshot (minutes on a panel of 10,000 snapshots instead of a second).
{{ config(post_hook=['analyze {{ this }}']) }}

with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

draw_prizes as (
    select * from {{ ref('int_hist__draw_prizes') }}
),

running_correlation as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds as as_of,
        {{ stat_snapshot_period_start('draws.ds') }} as period_start,
        lead({{ stat_snapshot_period_start('draws.ds') }}) over by_ds as next_period_start,
        count(draw_prizes.hist_draw_prize1_payout) over running as prize_rows,
        corr(draws.y::double precision, draw_prizes.hist_draw_prize1_payout) over running as y_prize1_corr
    from draws
    left join draw_prizes
        on
            draws.loto = draw_prizes.loto
            and draws.ds = draw_prizes.ds
    window
        by_ds as (partition by draws.loto, draws.unique_id order by draws.ds),
        running as (by_ds rows between unbounded preceding and current row)
),

series_correlation as (
    select
        running_correlation.loto,
        running_correlation.unique_id,
        running_correlation.as_of,
        running_correlation.y_prize1_corr
    from running_correlation
    where
        running_correlation.next_period_start is distinct from running_correlation.period_start
        and running_correlation.prize_rows > 0
),

lottery_as_of as (
    select distinct
        series_correlation.loto,
        series_correlation.as_of
    from series_correlation
),

lottery_prizes as (
    select
        lottery_as_of.loto,
        lottery_as_of.as_of,
        avg((draw_prizes.hist_draw_prize1_winners > 0)::integer::double precision) as prize1_hit_share,
        avg(draw_prizes.hist_draw_prize1_payout) as prize1_payout_mean,
        percentile_cont(0.5) within group (order by draw_prizes.hist_draw_prize1_payout)
            as prize1_payout_median
    from lottery_as_of
    inner join draw_prizes
        on
            lottery_as_of.loto = draw_prizes.loto
            and lottery_as_of.as_of >= draw_prizes.ds
    group by
        lottery_as_of.loto,
        lottery_as_of.as_of
),

final as (
    select
        series_correlation.loto,
        series_correlation.unique_id,
        series_correlation.as_of,
        lottery_prizes.prize1_hit_share as stat_prize1_hit_share,
        lottery_prizes.prize1_payout_mean as stat_prize1_payout_mean,
        lottery_prizes.prize1_payout_median as stat_prize1_payout_median,
        series_correlation.y_prize1_corr as stat_y_prize1_corr
    from series_correlation
    inner join lottery_prizes
        on
            series_correlation.loto = lottery_prizes.loto
            and series_correlation.as_of = lottery_prizes.as_of
)

select * from final
