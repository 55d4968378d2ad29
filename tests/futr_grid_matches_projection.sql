-- The rows of features_futr are the projected draw dates: every history date of
-- int_calendar__schedule_projected appears in the mart as history, and every future date as
-- one row per series of that lottery, with nothing else. Returns the (loto, ds, is_future)
-- combinations that differ. Only models downstream of staging are referenced, so that a
-- build of staging alone never selects this test.
with

futr as (
    select * from {{ ref('features_futr') }}
),

draw_dates as (
    select * from {{ ref('int_calendar__schedule_projected') }}
),

series as (
    select
        futr.loto,
        count(distinct futr.unique_id) as n_series
    from futr
    where not futr.is_future
    group by futr.loto
),

mart_dates as (
    select
        futr.loto,
        futr.ds,
        futr.is_future,
        count(*) as n_rows
    from futr
    group by
        futr.loto,
        futr.ds,
        futr.is_future
),

final as (
    select
        draw_dates.is_future as projected_is_future,
        mart_dates.is_future as mart_is_future,
        mart_dates.n_rows,
        series.n_series,
        coalesce(draw_dates.loto, mart_dates.loto) as loto,
        coalesce(draw_dates.ds, mart_dates.ds) as ds
    from draw_dates
    full outer join mart_dates
        on
            draw_dates.loto = mart_dates.loto
            and draw_dates.ds = mart_dates.ds
    left join series
        on coalesce(draw_dates.loto, mart_dates.loto) = series.loto
    where
        draw_dates.loto is null
        or mart_dates.loto is null
        or draw_dates.is_future != mart_dates.is_future
        or (mart_dates.is_future and mart_dates.n_rows != series.n_series)
)

select * from final
