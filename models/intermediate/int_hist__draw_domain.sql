-- One row per (loto, ds, y) that occurs in stg_lottery__draws: the lottery-level counts of
-- features_hist for the value y at that draw, and the statistics of the draw's main numbers.
-- Small (distinct values per draw, not rows), so it is rebuilt in full on every run: gap and
-- streak may reach back further than any lookback.
-- Draws are counted per lottery in ds order; "y appeared" means y is among the draw's main
-- numbers (N1..Nk), counted with multiplicity where a lottery allows repeats (numbers3/4).
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

lottery_draws as (
    select
        draws.loto,
        draws.ds,
        row_number() over (partition by draws.loto order by draws.ds) as draw_index
    from draws
    group by
        draws.loto,
        draws.ds
),

main_values as (
    -- Each distinct main number of a draw, with the number of positions showing it.
    select
        draws.loto,
        draws.ds,
        draws.y,
        count(*)::integer as n_positions
    from draws
    where {{ hist_is_main_number('draws.unique_id') }}
    group by
        draws.loto,
        draws.ds,
        draws.y
),

asked_values as (
    -- Every (draw, value) some row asks about: main numbers and bonus numbers alike.
    select distinct
        draws.loto,
        draws.ds,
        draws.y
    from draws
),

value_draws as (
    select
        asked_values.loto,
        asked_values.ds,
        asked_values.y,
        lottery_draws.draw_index,
        coalesce(main_values.n_positions, 0) as n_positions
    from asked_values
    inner join lottery_draws
        on
            asked_values.loto = lottery_draws.loto
            and asked_values.ds = lottery_draws.ds
    left join main_values
        on
            asked_values.loto = main_values.loto
            and asked_values.ds = main_values.ds
            and asked_values.y = main_values.y
),

appearances as (
    -- Draws where the value was a main number; a run of them on consecutive draws is a streak.
    select
        value_draws.loto,
        value_draws.y,
        value_draws.draw_index,
        value_draws.draw_index
        - row_number() over (
            partition by value_draws.loto, value_draws.y order by value_draws.draw_index
        ) as run_id
    from value_draws
    where value_draws.n_positions > 0
),

streaks as (
    select
        appearances.loto,
        appearances.y,
        appearances.draw_index,
        row_number() over (
            partition by appearances.loto, appearances.y, appearances.run_id
            order by appearances.draw_index
        )::integer as streak
    from appearances
),

value_history as (
    select
        value_draws.loto,
        value_draws.ds,
        value_draws.y,
        value_draws.draw_index,
        (
            value_draws.draw_index
            - max(value_draws.draw_index) filter (where value_draws.n_positions > 0) over (
                partition by value_draws.loto, value_draws.y
                order by value_draws.draw_index
                rows between unbounded preceding and 1 preceding
            )
        )::integer as hist_y_gap,
        {%- for n in var('freq_windows') %}
            coalesce(sum(value_draws.n_positions) over (
                partition by value_draws.loto, value_draws.y
                order by value_draws.draw_index
                range between {{ n }} preceding and 1 preceding
            ), 0)::integer as hist_y_freq_w{{ n }},
        {%- endfor %}
        value_draws.n_positions
    from value_draws
),

ordered_main_values as (
    select
        main_values.loto,
        main_values.ds,
        main_values.y,
        main_values.n_positions,
        lead(main_values.y) over (
            partition by main_values.loto, main_values.ds order by main_values.y
        ) as next_y
    from main_values
),

last_digits as (
    select
        main_values.loto,
        main_values.ds,
        sum(main_values.n_positions) as n_sharing
    from main_values
    group by
        main_values.loto,
        main_values.ds,
        mod(abs(main_values.y), 10)
),

draw_stats as (
    -- Sorted main numbers with repeats: only a step between two distinct values can be a
    -- consecutive pair, so counting distinct values v followed by v + 1 counts the pairs.
    select
        ordered_main_values.loto,
        ordered_main_values.ds,
        sum(ordered_main_values.y * ordered_main_values.n_positions)::double precision as hist_draw_sum,
        coalesce(
            sum(ordered_main_values.n_positions) filter (where mod(ordered_main_values.y, 2) <> 0), 0
        )::integer as hist_draw_odd_count,
        count(*) filter (where ordered_main_values.next_y - ordered_main_values.y = 1)::integer
        as hist_draw_consecutive_pairs
    from ordered_main_values
    group by
        ordered_main_values.loto,
        ordered_main_values.ds
),

shared_digits as (
    select
        last_digits.loto,
        last_digits.ds,
        coalesce(sum(last_digits.n_sharing) filter (where last_digits.n_sharing > 1), 0)::integer
        as hist_draw_same_last_digit
    from last_digits
    group by
        last_digits.loto,
        last_digits.ds
),

final as (
    select
        value_history.loto,
        value_history.ds,
        value_history.y::double precision as y,
        value_history.hist_y_gap,
        {%- for n in var('freq_windows') %}
            value_history.hist_y_freq_w{{ n }},
        {%- endfor %}
        coalesce(streaks.streak, 0) as hist_y_streak,
        draw_stats.hist_draw_sum,
        draw_stats.hist_draw_odd_count,
        draw_stats.hist_draw_consecutive_pairs,
        shared_digits.hist_draw_same_last_digit
    from value_history
    left join streaks
        on
            value_history.loto = streaks.loto
            and value_history.y = streaks.y
            and value_history.draw_index = streaks.draw_index
    left join draw_stats
        on
            value_history.loto = draw_stats.loto
            and value_history.ds = draw_stats.ds
    left join shared_digits
        on
            value_history.loto = shared_digits.loto
            and value_history.ds = shared_digits.ds
)

select * from final
