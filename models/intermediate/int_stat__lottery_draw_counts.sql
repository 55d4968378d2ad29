-- One row per (loto, ds) of stg_lottery__draws: the number of distinct draw dates of the
-- lottery up to and including ds, the lottery-wide draw count of features_stat_history at a
-- snapshot whose as_of is ds. One window pass over the lottery's distinct dates.
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

lottery_dates as (
    select distinct
        draws.loto,
        draws.ds
    from draws
),

final as (
    select
        lottery_dates.loto,
        lottery_dates.ds,
        row_number() over (partition by lottery_dates.loto order by lottery_dates.ds)::integer
            as draw_count_total
    from lottery_dates
)

select * from final
