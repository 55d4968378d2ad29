{#-
    Grain test: no two rows share the same values of `columns`, and none of them is NULL.
    Usage (model level):
        data_tests:
          - unique_combination:
              arguments:
                columns: [loto, unique_id, ds]
-#}
{% test unique_combination(model, columns) %}

with

grain as (
    select
        {% for column in columns %}{{ column }},{% endfor %}
        count(*) as n_rows
    from {{ model }}
    group by {% for column in columns %}{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
),

final as (
    select * from grain
    where
        n_rows > 1
        {%- for column in columns %}
        or {{ column }} is null
        {%- endfor %}
)

select * from final

{% endtest %}
