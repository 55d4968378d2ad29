-- One row per series (loto, unique_id): its length, first and last ds and the median
-- difference in days between consecutive rows, fractional for intraday data (1/48 for
-- half-hourly; pandas `(ds.diff() / pd.Timedelta(days=1)).median()`; NULL for a single row).
-- The gap is seconds / 86400 in double precision: whole days stay whole, as when ds was a date.
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

gaps as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        extract(
            epoch from draws.ds - lag(draws.ds) over (
                partition by draws.loto, draws.unique_id
                order by draws.ds
            )
        )::double precision / 86400 as gap_days
    from draws
),

final as (
    select
        gaps.loto,
        gaps.unique_id,
        count(*)::integer as series_length,
        min(gaps.ds) as series_start_date,
        max(gaps.ds) as series_end_date,
        -- ordered-set aggregates skip the NULL gap of each series' first row
        percentile_cont(0.5) within group (order by gaps.gap_days) as series_frequency_days
    from gaps
    group by
        gaps.loto,
        gaps.unique_id
)

select * from final
