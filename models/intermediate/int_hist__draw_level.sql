-- One row per (loto, ds, y) of int_hist__draw_domain, for a lottery of loto_positions: the
-- lottery-level counts with the value's gap statistics (int_hist__value_gaps, the same
-- keys), so that features_hist takes both in one join. A user's series or a market's prices
-- have no draw of numbers: no row here, and these columns of features_hist are NULL there
-- (as in the online engine, which adds them to a whole draw only).
-- A view: features_hist reads it once per build (its planner sees through it), so a table
-- would only write the same rows once more.
{{ config(materialized='view') }}

with

draw_domain as (
    select * from {{ ref('int_hist__draw_domain') }}
),

value_gaps as (
    select * from {{ ref('int_hist__value_gaps') }}
),

positions as (
    select * from {{ ref('loto_positions') }}
),

final as (
    select
        draw_domain.loto,
        draw_domain.ds,
        draw_domain.y,
        {%- for column in hist_draw_domain_columns() %}
            draw_domain.{{ column }},
        {%- endfor %}
        value_gaps.hist_y_gap_mean,
        value_gaps.hist_y_gap_std
    from draw_domain
    left join value_gaps
        on
            draw_domain.loto = value_gaps.loto
            and draw_domain.ds = value_gaps.ds
            and draw_domain.y = value_gaps.y
    where draw_domain.loto in (select positions.loto from positions)
)

select * from final
