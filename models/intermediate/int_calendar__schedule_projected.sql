-- One row per (loto, ds): every date a lottery drew (history) and its next var('futr_horizon')
-- scheduled draw dates after its last draw (future), by the dated weekly schedule of
-- loto_schedule and outside the New Year break. A lottery without a schedule row gets no
-- future dates: nothing is inferred from its past draw weekdays.
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

schedule as (
    select * from {{ ref('loto_schedule') }}
),

history_dates as (
    select distinct
        draws.loto,
        draws.ds
    from draws
),

last_draws as (
    select
        history_dates.loto,
        max(history_dates.ds) as last_draw_date
    from history_dates
    group by history_dates.loto
),

candidate_dates as (
    -- A schedule draws at least weekly, so horizon weeks plus the New Year break would do;
    -- a year more lets a schedule resume after a pause of up to a year.
    select
        last_draws.loto,
        last_draws.last_draw_date + day_offsets.day_offset as ds
    from last_draws
    cross join
        generate_series(1, 7 * {{ var('futr_horizon') }} + 366) as day_offsets (day_offset)
),

scheduled_dates as (
    select
        candidate_dates.loto,
        candidate_dates.ds,
        row_number() over (
            partition by candidate_dates.loto
            order by candidate_dates.ds
        ) as future_step
    from candidate_dates
    where
        not {{ is_new_year_break('candidate_dates.ds') }}
        and exists (
            select 1 as is_scheduled
            from schedule
            where
                schedule.loto = candidate_dates.loto
                and schedule.draw_weekday = {{ day_of_week('candidate_dates.ds') }}
                and candidate_dates.ds between schedule.valid_from_date and schedule.valid_to_date
        )
),

final as (
    select
        history_dates.loto,
        history_dates.ds,
        false as is_future,
        null::integer as future_step
    from history_dates

    union all

    select
        scheduled_dates.loto,
        scheduled_dates.ds,
        true as is_future,
        scheduled_dates.future_step::integer as future_step
    from scheduled_dates
    where scheduled_dates.future_step <= {{ var('futr_horizon') }}
)

select * from final
