{#-
    Draw numbers of a lottery run without gaps when ordered by date (each draw is the
    previous one plus one). Usage (column level, usually severity warn):
    data_tests: [continuous_draw_numbers]
-#}
{% test continuous_draw_numbers(model, column_name) %}

with

draws as (
    select distinct loto, ds, {{ column_name }} as draw_number from {{ model }}
),

ordered as (
    select
        loto,
        ds,
        draw_number,
        lag(draw_number) over (partition by loto order by ds) as previous_draw_number
    from draws
),

final as (
    select * from ordered
    where previous_draw_number is not null and draw_number <> previous_draw_number + 1
)

select * from final

{% endtest %}
