-- Future rows of features_futr: after the last draw of their lottery, never in the New Year
-- break (31 December to 3 January), and var('futr_horizon') of them for every series of a
-- lottery that has any. Returns the offending series.
with

futr as (
    select * from {{ ref('features_futr') }}
),

series as (
    select
        futr.loto,
        futr.unique_id,
        max(futr.ds) filter (where not futr.is_future) as last_series_draw_date,
        min(futr.ds) filter (where futr.is_future) as first_future_date,
        count(*) filter (where futr.is_future) as n_future,
        count(*) filter (
            where futr.is_future and to_char(futr.ds, 'MM-DD') in ('12-31', '01-01', '01-02', '01-03')
        ) as n_in_new_year_break
    from futr
    group by
        futr.loto,
        futr.unique_id
),

lotteries as (
    select
        series.loto,
        max(series.last_series_draw_date) as last_draw_date,
        max(series.n_future) as n_future_max
    from series
    group by series.loto
),

final as (
    select
        series.*,
        lotteries.last_draw_date
    from series
    inner join lotteries
        on series.loto = lotteries.loto
    where
        series.first_future_date <= lotteries.last_draw_date
        or series.n_in_new_year_break > 0
        or (lotteries.n_future_max > 0 and series.n_future != {{ var('futr_horizon') }})
)

select * from final
