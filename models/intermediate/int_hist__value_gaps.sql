-- One row per (loto, ds, y) of int_hist__draw_domain: how regularly the value y has appeared
-- among the lottery's main numbers before this draw.
--   hist_y_gap_mean, hist_y_gap_std: mean and standard deviation (ddof 1) of y's completed
--     gaps, a gap being the number of draws between two consecutive appearances (the unit of
--     hist_y_gap); only gaps whose closing appearance is before this draw count. NULL with
--     fewer than 1 (mean) or 2 (std) gaps.
-- Reads the domain counts rather than the draws: at an appearance (hist_y_streak > 0) the
-- value's hist_y_gap is exactly the gap that appearance completes, so the statistics are
-- running sums of those gaps over the strictly earlier rows of the value. Gaps are integers,
-- so the sums are exact and a constant gap gives a standard deviation of exactly 0.
-- Rebuilt in full with int_hist__draw_domain: a corrected draw moves every later statistic.

with

domain as (
    select * from {{ ref('int_hist__draw_domain') }}
),

indexed as (
    select
        domain.loto,
        domain.ds,
        domain.y,
        dense_rank() over (partition by domain.loto order by domain.ds) as draw_index,
        case when domain.hist_y_streak > 0 then domain.hist_y_gap end as completed_gap
    from domain
),

running as (
    select
        indexed.loto,
        indexed.ds,
        indexed.y,
        count(indexed.completed_gap) over earlier as gap_count,
        sum(indexed.completed_gap) over earlier as gap_sum,
        sum(indexed.completed_gap::bigint * indexed.completed_gap) over earlier as gap_square_sum
    from indexed
    window earlier as (
        partition by indexed.loto, indexed.y
        order by indexed.draw_index
        rows between unbounded preceding and 1 preceding
    )
),

final as (
    select
        running.loto,
        running.ds,
        running.y,
        case
            when running.gap_count >= 1 then running.gap_sum::double precision / running.gap_count
        end as hist_y_gap_mean,
        case
            when running.gap_count >= 2
                then sqrt(
                    greatest(
                        running.gap_count * running.gap_square_sum - running.gap_sum * running.gap_sum, 0
                    )::double precision
                    / (running.gap_count * (running.gap_count - 1))
                )
        end as hist_y_gap_std
    from running
)

select * from final
