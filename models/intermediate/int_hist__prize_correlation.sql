-- One row per (loto, unique_id, ds) of the lotteries that have prize data: the Pearson
-- correlation of y and the draw's tier-1 payout over the last var('stat_window') rows of the
-- series, hist_y_prize1_corr_w{stat_window}. NULL until those rows all have prize data, and
-- where either side is constant in them (PostgreSQL's corr() is NULL for a zero variance).
-- Only lotteries with prize rows are scanned, so a panel without prize data costs nothing
-- here; features_hist shows NULL for every other row.
-- Rebuilt in full: a prize table loaded after the draws moves every later window.

{%- set window_rows = hist_int_var('stat_window', 30) %}

with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

draw_prizes as (
    select * from {{ ref('int_hist__draw_prizes') }}
),

prize_lotteries as (
    select distinct draw_prizes.loto
    from draw_prizes
),

series_rows as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        draws.y::double precision as y,
        draw_prizes.hist_draw_prize1_payout as payout
    from draws
    inner join prize_lotteries
        on draws.loto = prize_lotteries.loto
    left join draw_prizes
        on
            draws.loto = draw_prizes.loto
            and draws.ds = draw_prizes.ds
),

windowed as (
    select
        series_rows.loto,
        series_rows.unique_id,
        series_rows.ds,
        count(series_rows.payout) over last_rows as payout_count,
        corr(series_rows.y, series_rows.payout) over last_rows as y_payout_corr
    from series_rows
    window last_rows as (
        partition by series_rows.loto, series_rows.unique_id
        order by series_rows.ds
        rows between {{ window_rows - 1 }} preceding and current row
    )
),

final as (
    select
        windowed.loto,
        windowed.unique_id,
        windowed.ds,
        case when windowed.payout_count = {{ window_rows }} then windowed.y_payout_corr end
            as hist_y_prize1_corr_w{{ window_rows }}
    from windowed
)

select * from final
