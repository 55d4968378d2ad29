{#-
    Winners and prizes are not negative, and a tier nobody won has no prize.
    Usage (model level): data_tests: [prize_amounts_valid]
-#}
{% test prize_amounts_valid(model) %}

with

prizes as (
    select * from {{ model }}
),

final as (
    select loto, ds, tier, winners, prize
    from prizes
    where
        winners < 0
        or prize < 0
        or (winners = 0 and prize is not null)
)

select * from final

{% endtest %}
