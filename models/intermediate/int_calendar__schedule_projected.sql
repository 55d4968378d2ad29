-- One row per (loto, unique_id, ds): every row of a series (history) and its next
-- var('futr_horizon') steps (future), the grid of features_futr.
--   * A lottery with rows in loto_schedule projects its dated weekly schedule from the
--     lottery's last draw, outside the New Year break: the same dates for each of its series.
--     Nothing is inferred from the weekdays it happened to draw on.
--   * Any other series (a user's own: daily, half-hourly, hourly bars) steps at its own
--     cadence: last ds + k * step for k = 1..futr_horizon, the step being the median of its
--     last var('futr_step_diffs') differences between consecutive rows (an interval; the
--     median of an even number interpolates). A series of one row has no step and no future.
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

schedule as (
    select * from {{ ref('loto_schedule') }}
),

scheduled_lotos as (
    select distinct schedule.loto
    from schedule
),

last_draws as (
    select
        draws.loto,
        max(draws.ds) as last_draw_date
    from draws
    where draws.loto in (select scheduled_lotos.loto from scheduled_lotos)
    group by draws.loto
),

candidate_dates as (
    -- A schedule draws at least weekly, so horizon weeks plus the New Year break would do;
    -- a year more lets a schedule resume after a pause of up to a year.
    select
        last_draws.loto,
        last_draws.last_draw_date + day_offsets.day_offset * interval '1 day' as ds
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
                and candidate_dates.ds::date between schedule.valid_from_date and schedule.valid_to_date
        )
),

series as (
    select distinct
        draws.loto,
        draws.unique_id
    from draws
),

draw_keys as not materialized (
    -- The draws read again, not from the CTE above: a CTE read more than once is copied, and
    -- its copy has no index. Only the key is read, so the index alone gives it in order.
    select * from {{ ref('stg_lottery__draws') }}
),

recent_gaps as (
    -- The series without a schedule, each row with its gap to the row before and its rank
    -- from the end (1 = newest); both windows read the rows in one order.
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        draws.ds - lag(draws.ds) over by_ds as gap,
        count(*) over by_series - row_number() over by_ds + 1 as rows_from_end
    from draw_keys as draws
    where draws.loto not in (select scheduled_lotos.loto from scheduled_lotos)
    window
        by_series as (partition by draws.loto, draws.unique_id),
        by_ds as (by_series order by draws.ds)
),

series_steps as (
    -- Ordered-set aggregates skip the NULL gap of a series' first row.
    select
        recent_gaps.loto,
        recent_gaps.unique_id,
        max(recent_gaps.ds) as last_ds,
        percentile_cont(0.5) within group (order by recent_gaps.gap) as step
    from recent_gaps
    where recent_gaps.rows_from_end <= {{ var('futr_step_diffs') }}
    group by
        recent_gaps.loto,
        recent_gaps.unique_id
),

final as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        false as is_future,
        null::integer as future_step
    from draws

    union all

    select
        series.loto,
        series.unique_id,
        scheduled_dates.ds,
        true as is_future,
        scheduled_dates.future_step::integer as future_step
    from series
    inner join scheduled_dates
        on series.loto = scheduled_dates.loto
    where scheduled_dates.future_step <= {{ var('futr_horizon') }}

    union all

    select
        series_steps.loto,
        series_steps.unique_id,
        series_steps.last_ds + steps.future_step * series_steps.step as ds,
        true as is_future,
        steps.future_step
    from series_steps
    cross join generate_series(1, {{ var('futr_horizon') }}) as steps (future_step)
    where series_steps.step is not null
)

select * from final
