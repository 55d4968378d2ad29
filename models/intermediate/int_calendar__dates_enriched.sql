-- One row per distinct ds of int_calendar__schedule_projected (history and future) with every
-- calendar column of features_futr, computed once per timestamp rather than once per series.
-- ds is a timestamp: the parts of the day (year ... holidays) come from its date, the hour
-- and minute-of-day terms from its time (0 at midnight), and the Fourier terms from the
-- fractional days since 1970-01-01, so a daily series (midnight) gets exactly the values it
-- had when ds was a date.
-- Holidays come from the jp_holidays seed; dates in years the seed does not cover get NULL
-- holiday columns rather than a guess.
with

draw_dates as (
    select * from {{ ref('int_calendar__schedule_projected') }}
),

holidays as (
    select * from {{ ref('jp_holidays') }}
),

dates as (
    select distinct draw_dates.ds
    from draw_dates
),

days as (
    -- The holiday columns depend on the day alone.
    select distinct dates.ds::date as calendar_date
    from dates
),

holiday_coverage as (
    -- The seed is written for whole calendar years.
    select
        make_date(extract(year from min(holidays.holiday_date))::integer, 1, 1) as covered_from_date,
        make_date(extract(year from max(holidays.holiday_date))::integer, 12, 31) as covered_to_date
    from holidays
),

date_parts as (
    select
        dates.ds,
        extract(year from dates.ds)::integer as futr_ds_year,
        extract(quarter from dates.ds)::integer as futr_ds_quarter,
        extract(month from dates.ds)::integer as futr_ds_month,
        extract(day from dates.ds)::integer as futr_ds_day_of_month,
        extract(doy from dates.ds)::integer as futr_ds_day_of_year,
        -- PostgreSQL's `week` is the ISO 8601 week, like pandas' isocalendar().week.
        extract(week from dates.ds)::integer as futr_ds_week_of_year,
        {{ day_of_week('dates.ds') }} as futr_ds_day_of_week,
        {{ days_in_month('dates.ds') }} as futr_ds_days_in_month,
        extract(hour from dates.ds)::integer as ds_hour,
        (60 * extract(hour from dates.ds) + extract(minute from dates.ds))::integer as ds_minute_of_day,
        {{ days_since_epoch('dates.ds') }} as days_since_epoch
    from dates
),

timeline as (
    -- Draw dates and holidays on one time line; on a shared day the holiday row sorts first
    -- in both directions, so "on or before" and "on or after" include the day itself.
    select
        days.calendar_date,
        1 as is_draw_date,
        null::date as holiday_date
    from days

    union all

    select
        holidays.holiday_date as calendar_date,
        0 as is_draw_date,
        holidays.holiday_date
    from holidays
),

holiday_neighbours as (
    -- Running max / min over the time line: one sort each way instead of a scan of the
    -- holidays per date.
    select
        timeline.calendar_date as ds,
        timeline.is_draw_date,
        max(timeline.holiday_date) over (
            order by timeline.calendar_date asc, timeline.is_draw_date asc
            rows between unbounded preceding and current row
        ) as previous_holiday_date,
        min(timeline.holiday_date) over (
            order by timeline.calendar_date desc, timeline.is_draw_date asc
            rows between unbounded preceding and current row
        ) as next_holiday_date
    from timeline
),

holiday_flags as (
    select
        holiday_neighbours.ds,
        holiday_neighbours.previous_holiday_date,
        holiday_neighbours.next_holiday_date,
        holiday_neighbours.previous_holiday_date = holiday_neighbours.ds as is_holiday,
        (
            holiday_neighbours.ds
            between holiday_coverage.covered_from_date and holiday_coverage.covered_to_date
        ) as is_covered
    from holiday_neighbours
    cross join holiday_coverage
    where holiday_neighbours.is_draw_date = 1
),

final as (
    select
        date_parts.ds,
        date_parts.futr_ds_year,
        date_parts.futr_ds_quarter,
        date_parts.futr_ds_month,
        date_parts.futr_ds_day_of_month,
        date_parts.futr_ds_day_of_year,
        date_parts.futr_ds_week_of_year,
        date_parts.futr_ds_day_of_week,
        date_parts.futr_ds_days_in_month,
        date_parts.futr_ds_day_of_week >= 5 as futr_ds_is_weekend,
        {{ is_leap_year('date_parts.futr_ds_year') }} as futr_ds_leapyear,
        (
            date_parts.futr_ds_day_of_month = 1
            and date_parts.futr_ds_month in (1, 4, 7, 10)
        ) as futr_ds_quarter_start,
        (
            date_parts.futr_ds_day_of_month = date_parts.futr_ds_days_in_month
            and date_parts.futr_ds_month in (3, 6, 9, 12)
        ) as futr_ds_quarter_end,
        date_parts.futr_ds_day_of_month = 1 as futr_ds_month_start,
        date_parts.futr_ds_day_of_month = date_parts.futr_ds_days_in_month as futr_ds_month_end,
        {{ cyclical_encoding(
            'date_parts.futr_ds_day_of_month - 1', 'date_parts.futr_ds_days_in_month', 'futr_ds_day'
        ) }},
        {{ cyclical_encoding('date_parts.futr_ds_day_of_week', 7, 'futr_ds_week') }},
        {{ cyclical_encoding('date_parts.futr_ds_month - 1', 12, 'futr_ds_month') }},
        {{ cyclical_encoding('date_parts.futr_ds_quarter - 1', 4, 'futr_ds_quarter') }},
        {{ cyclical_encoding('date_parts.ds_hour', 24, 'futr_ds_hour') }},
        {{ cyclical_encoding('date_parts.ds_minute_of_day', 1440, 'futr_ds_minute_of_day') }},
        {{ fourier_terms('date_parts.days_since_epoch', 'futr') }},
        case when holiday_flags.is_covered then coalesce(holiday_flags.is_holiday, false) end as futr_is_holiday,
        case
            when holiday_flags.is_covered
                then date_parts.ds::date - holiday_flags.previous_holiday_date
        end as futr_days_since_holiday,
        case
            when holiday_flags.is_covered
                then holiday_flags.next_holiday_date - date_parts.ds::date
        end as futr_days_until_holiday
    from date_parts
    inner join holiday_flags
        on date_parts.ds::date = holiday_flags.ds
)

select * from final
