{#-
    No number appears twice within one draw of a lottery whose spec forbids repeats.
    Usage (model level): data_tests: [no_repeats_within_draw]
-#}
{% test no_repeats_within_draw(model) %}

with

draws as (
    select * from {{ model }}
),

spec as (
    select * from {{ ref('loto_spec') }}
),

final as (
    select
        draws.loto,
        draws.ds,
        draws.y,
        count(*) as n_positions
    from draws
    inner join spec on draws.loto = spec.loto
    where not spec.allow_repeats
    group by draws.loto, draws.ds, draws.y
    having count(*) > 1
)

select * from final

{% endtest %}
