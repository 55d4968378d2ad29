-- One row per series (loto, unique_id) of the lotteries with prize data in stg_lottery__prizes:
--   stat_prize1_hit_share: share of the lottery's draws with prize data that had a tier-1 winner;
--   stat_prize1_payout_mean, stat_prize1_payout_median: mean and median of the tier-1 payout
--     (winners x prize, 0 where nobody won) over those draws;
--   stat_y_prize1_corr: Pearson correlation of y and the tier-1 payout over the rows of the
--     series that have prize data (NULL where either side is constant).
-- Series of lotteries without prize data have no row, so features_stat shows NULL.

with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

draw_prizes as (
    select * from {{ ref('int_hist__draw_prizes') }}
),

lottery_prizes as (
    select
        draw_prizes.loto,
        avg((draw_prizes.hist_draw_prize1_winners > 0)::integer::double precision) as prize1_hit_share,
        avg(draw_prizes.hist_draw_prize1_payout) as prize1_payout_mean,
        percentile_cont(0.5) within group (order by draw_prizes.hist_draw_prize1_payout)
            as prize1_payout_median
    from draw_prizes
    group by draw_prizes.loto
),

series_correlation as (
    select
        draws.loto,
        draws.unique_id,
        corr(draws.y::double precision, draw_prizes.hist_draw_prize1_payout) as y_prize1_corr
    from draws
    inner join draw_prizes
        on
            draws.loto = draw_prizes.loto
            and draws.ds = draw_prizes.ds
    group by
        draws.loto,
        draws.unique_id
),

final as (
    select
        series_correlation.loto,
        series_correlation.unique_id,
        lottery_prizes.prize1_hit_share as stat_prize1_hit_share,
        lottery_prizes.prize1_payout_mean as stat_prize1_payout_mean,
        lottery_prizes.prize1_payout_median as stat_prize1_payout_median,
        series_correlation.y_prize1_corr as stat_y_prize1_corr
    from series_correlation
    inner join lottery_prizes
        on series_correlation.loto = lottery_prizes.loto
)

select * from final
