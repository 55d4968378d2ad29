{#-
    Draw dates fall on the lottery's draw weekdays as of that date (seed loto_schedule,
    Monday = 0). Lotteries without a schedule are not checked.
    Usage (column level, usually severity warn): data_tests: [on_draw_weekdays]
-#}
{% test on_draw_weekdays(model, column_name) %}

with

draws as (
    select distinct loto, {{ column_name }} as draw_date from {{ model }}
),

schedule as (
    select * from {{ ref('loto_schedule') }}
),

scheduled_lotos as (
    select distinct loto from schedule
),

final as (
    select draws.loto, draws.draw_date
    from draws
    inner join scheduled_lotos on draws.loto = scheduled_lotos.loto
    where not exists (
        select 1
        from schedule
        where
            schedule.loto = draws.loto
            and draws.draw_date between schedule.valid_from_date and schedule.valid_to_date
            and schedule.draw_weekday = (extract(isodow from draws.draw_date)::integer - 1)
    )
)

select * from final

{% endtest %}
