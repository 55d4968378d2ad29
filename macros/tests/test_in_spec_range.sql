{#-
    Every value of `column_name` lies in the number range of its lottery position
    (seed loto_positions). Rows of lotteries without a spec are not checked.
    Usage (column level): data_tests: [in_spec_range]
-#}
{% test in_spec_range(model, column_name) %}

with

draws as (
    select * from {{ model }}
),

positions as (
    select * from {{ ref('loto_positions') }}
),

final as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        draws.{{ column_name }} as value,
        positions.range_min,
        positions.range_max
    from draws
    inner join positions
        on draws.loto = positions.loto and draws.unique_id = positions.unique_id
    where
        draws.{{ column_name }} < positions.range_min
        or draws.{{ column_name }} > positions.range_max
        or draws.{{ column_name }} <> trunc(draws.{{ column_name }})
)

select * from final

{% endtest %}
