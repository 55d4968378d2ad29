-- One row per (loto, unique_id, ds): every row of stg_lottery__draws (is_future false) and,
-- for every series, its next var('futr_horizon') steps (is_future true): a lottery's
-- scheduled draw dates, or a user's series' own cadence (int_calendar__schedule_projected),
-- with the calendar features known in advance for each timestamp.
-- A table: the future rows move with every new draw, and the whole mart takes well under a
-- second to rebuild from the per-timestamp calendar. Its primary key is the grain, added
-- after the load (primary_key_after_load).
{{ config(post_hook=["{{ primary_key_after_load(['loto', 'unique_id', 'ds']) }}"]) }}

with

grid as (
    select * from {{ ref('int_calendar__schedule_projected') }}
),

calendar as (
    select * from {{ ref('int_calendar__dates_enriched') }}
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
