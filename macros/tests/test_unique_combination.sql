{#-
    Grain test: no two rows share the same values of `columns`, and none of them is NULL.
    Usage (model level):
        data_tests:
          - unique_combination:
              arguments:
                columns: [loto, unique_id, ds]
-#}
{% test unique_combination(model, columns) %}
{%- set column_list = columns | join(', ') %}

    with

    grain as (
        select
            {{ column_list }},
            count(*) as n_rows
        from {{ model }}
        group by {{ column_list }}
    ),

    final as (
        select * from grain
        where
            n_rows > 1
            {% for column in columns -%}
            or {{ column }} is null
            {% endfor %}
    )

    select * from final

{% endtest %}
