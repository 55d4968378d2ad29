-- One row per series (loto, unique_id): its length, first and last draw date and the median
-- number of days between consecutive draws (pandas `ds.diff().dt.days.median()`; NULL for a
-- single draw).
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

gaps as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        draws.ds - lag(draws.ds) over (
            partition by draws.loto, draws.unique_id
            order by draws.ds
        ) as gap_days
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
