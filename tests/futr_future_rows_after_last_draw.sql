-- Future rows of features_futr: after the last draw of their lottery (a scheduled lottery)
-- or the last row of their series (a series at its own step), never in the New Year break
-- for a scheduled lottery (31 December to 3 January), and var('futr_horizon') of them for
-- every series of a scheduled lottery that has any, and for every unscheduled series of at
-- least two rows (one row has no step). Returns the offending series.
with

futr as (
    select * from {{ ref('features_futr') }}
),

schedule as (
    select * from {{ ref('loto_schedule') }}
),

series as (
    select
        futr.loto,
        futr.unique_id,
        futr.loto in (select schedule.loto from schedule) as is_scheduled,
        max(futr.ds) filter (where not futr.is_future) as last_series_ds,
        count(*) filter (where not futr.is_future) as n_history,
        min(futr.ds) filter (where futr.is_future) as first_future_ds,
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
        max(series.last_series_ds) as last_draw_date,
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
        (
            series.is_scheduled
            and (
                series.first_future_ds <= lotteries.last_draw_date
                or series.n_in_new_year_break > 0
                or (lotteries.n_future_max > 0 and series.n_future != {{ var('futr_horizon') }})
            )
        )
        or (
            not series.is_scheduled
            and (
                series.first_future_ds <= series.last_series_ds
                or series.n_future != case when series.n_history > 1 then {{ var('futr_horizon') }} else 0 end
            )
        )
)

select * from final
