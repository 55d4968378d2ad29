-- One row per position (loto, unique_id) of loto_positions: hist_y_gap_expected, the gap
-- expected by chance between two appearances of a value of this position's range: the size
-- of the range over the main numbers drawn from it in a draw (43/6 for Loto6, 37/7 for Loto7,
-- 5/1 for a Bingo5 position, whose range belongs to one main position). A bonus position
-- counts the main positions that share its range.

with

positions as (
    select * from {{ ref('loto_positions') }}
),

main_draws_per_range as (
    select
        positions.loto,
        positions.range_min,
        positions.range_max,
        count(*) as main_count
    from positions
    where positions.category = 'main'
    group by
        positions.loto,
        positions.range_min,
        positions.range_max
),

final as (
    select
        positions.loto,
        positions.unique_id,
        (positions.range_max - positions.range_min + 1)::double precision
        / main_draws_per_range.main_count as hist_y_gap_expected
    from positions
    inner join main_draws_per_range
        on
            positions.loto = main_draws_per_range.loto
            and positions.range_min = main_draws_per_range.range_min
            and positions.range_max = main_draws_per_range.range_max
)

select * from final
