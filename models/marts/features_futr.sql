-- One row per (loto, unique_id, ds): every row of stg_lottery__draws (is_future false) and,
-- for every series of a lottery, that lottery's next var('futr_horizon') scheduled draw dates
-- (is_future true), with the calendar features known in advance for each date.
-- A table: the future rows move with every new draw, and the whole mart takes well under a
-- second to rebuild from the per-date calendar.
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

draw_dates as (
    select * from {{ ref('int_calendar__schedule_projected') }}
),

calendar as (
    select * from {{ ref('int_calendar__dates_enriched') }}
),

series as (
    select distinct
        draws.loto,
        draws.unique_id
    from draws
),

history_rows as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        false as is_future
    from draws
),

future_rows as (
    select
        series.loto,
        series.unique_id,
        draw_dates.ds,
        true as is_future
    from series
    inner join draw_dates
        on series.loto = draw_dates.loto
    where draw_dates.is_future
),

grid as (
    select * from history_rows
    union all
    select * from future_rows
),

final as (
    select
        grid.loto,
        grid.unique_id,
        grid.ds,
        grid.is_future,
        {%- for column in futr_columns() %}
            calendar.{{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from grid
    inner join calendar
        on grid.ds = calendar.ds
)

select * from final
