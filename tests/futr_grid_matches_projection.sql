-- The rows of features_futr are the projected grid: every (loto, unique_id, ds) of
-- int_calendar__schedule_projected appears in the mart once, with the same is_future, and
-- nothing else (a timestamp missing from the calendar would drop a row). Returns the keys
-- that differ. Only models downstream of staging are referenced, so that a build of staging
-- alone never selects this test.
with

futr as (
    select * from {{ ref('features_futr') }}
),

grid as (
    select * from {{ ref('int_calendar__schedule_projected') }}
),

final as (
    select
        grid.is_future as projected_is_future,
        futr.is_future as mart_is_future,
        coalesce(grid.loto, futr.loto) as loto,
        coalesce(grid.unique_id, futr.unique_id) as unique_id,
        coalesce(grid.ds, futr.ds) as ds
    from grid
    full outer join futr
        on
            grid.loto = futr.loto
            and grid.unique_id = futr.unique_id
            and grid.ds = futr.ds
    where
        grid.loto is null
        or futr.loto is null
        or grid.is_future != futr.is_future
)

select * from final
