{#-
    Every (loto, tier) of a prize table is a tier of that lottery (seed loto_prize_tiers).
    Usage (model level): data_tests: [prize_tier_in_spec]
-#}
{% test prize_tier_in_spec(model) %}

with

prizes as (
    select * from {{ model }}
),

tiers as (
    select * from {{ ref('loto_prize_tiers') }}
),

final as (
    select prizes.loto, prizes.ds, prizes.tier
    from prizes
    left join tiers
        on prizes.loto = tiers.loto and prizes.tier = tiers.tier
    where tiers.tier is null
)

select * from final

{% endtest %}
