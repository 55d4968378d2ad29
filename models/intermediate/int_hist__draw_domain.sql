-- One row per (loto, ds, y) that occurs in stg_lottery__draws: the lottery-level counts of
-- features_hist for the value y at that draw, and the statistics of the draw's main numbers.
-- Small (distinct values per draw, not rows), so it is rebuilt in full on every run: gap and
-- streak may reach back further than any lookback.
-- Draws are counted per lottery in ds order; "y appeared" means y is among the draw's main
-- numbers (N1..Nk), counted with multiplicity where a lottery allows repeats (numbers3/4).
{{
    config(
        pre_hook=["set local work_mem = '256MB'"],
    )
}}

with

draws as (
    -- Only the columns used: the staging view's draw-number fallback is a window over each
    -- lottery that nothing here needs.
    select
        loto,
        unique_id,
        ds,
        y
    from {{ ref('stg_lottery__draws') }}
),

draw_values as (
    -- Every (draw, value) some row asks about, with the number of main positions showing it
    -- (0 for a bonus number that is not also a main number). One pass over the rows.
    select
        draws.loto,
        draws.ds,
        draws.y,
        (count(*) filter (where {{ hist_is_main_number('draws.unique_id') }}))::integer as n_positions
    from draws
    group by
        draws.loto,
        draws.ds,
        draws.y
),

lottery_draws as (
    select
        draw_values.loto,
        draw_values.ds,
        row_number() over (partition by draw_values.loto order by draw_values.ds) as draw_index
    from draw_values
    group by
        draw_values.loto,
        draw_values.ds
),

value_draws as (
    select
        draw_values.loto,
        draw_values.ds,
        draw_values.y,
        draw_values.n_positions,
        lottery_draws.draw_index
    from draw_values
    inner join lottery_draws
        on
            draw_values.loto = lottery_draws.loto
            and draw_values.ds = lottery_draws.ds
),

value_history as (
    select
        value_draws.loto,
        value_draws.ds,
        value_draws.y,
        value_draws.draw_index,
        value_draws.n_positions,
        max(value_draws.draw_index) filter (where value_draws.n_positions > 0) over earlier as last_seen_index,
        {%- for n in var('freq_windows') %}
            coalesce(sum(value_draws.n_positions) over (
                partition by value_draws.loto, value_draws.y
                order by value_draws.draw_index
                range between {{ n }} preceding and 1 preceding
            ), 0)::integer as hist_y_freq_w{{ n }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from value_draws
    window earlier as (
        partition by value_draws.loto, value_draws.y
        order by value_draws.draw_index
        rows between unbounded preceding and 1 preceding
    )
),

value_runs as (
    -- A streak starts at an appearance whose previous appearance is not the draw before.
    select
        value_history.*,
        max(
            case
                when
                    value_history.n_positions > 0
                    and value_history.last_seen_index is distinct from value_history.draw_index - 1
                    then value_history.draw_index
            end
        ) over (
            partition by value_history.loto, value_history.y
            order by value_history.draw_index
            rows between unbounded preceding and current row
        ) as run_start_index
    from value_history
),

main_values as (
    select
        draw_values.loto,
        draw_values.ds,
        draw_values.y,
        draw_values.n_positions
    from draw_values
    where draw_values.n_positions > 0
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
        (count(*) filter (where ordered_main_values.next_y - ordered_main_values.y = 1))::integer
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
        value_runs.loto,
        value_runs.ds,
        value_runs.y::double precision as y,
        (value_runs.draw_index - value_runs.last_seen_index)::integer as hist_y_gap,
        {%- for n in var('freq_windows') %}
            value_runs.hist_y_freq_w{{ n }},
        {%- endfor %}
        case
            when value_runs.n_positions > 0 then (value_runs.draw_index - value_runs.run_start_index + 1)::integer
            else 0
        end as hist_y_streak,
        draw_stats.hist_draw_sum,
        draw_stats.hist_draw_odd_count,
        draw_stats.hist_draw_consecutive_pairs,
        shared_digits.hist_draw_same_last_digit
    from value_runs
    left join draw_stats
        on
            value_runs.loto = draw_stats.loto
            and value_runs.ds = draw_stats.ds
    left join shared_digits
        on
            value_runs.loto = shared_digits.loto
            and value_runs.ds = shared_digits.ds
)

select * from final
