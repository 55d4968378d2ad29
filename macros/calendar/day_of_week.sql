{#-
    Day of the week with Monday = 0 .. Sunday = 6, pandas `DatetimeIndex.day_of_week`
    (PostgreSQL's `isodow` counts Monday = 1 .. Sunday = 7).
    Usage: {{ day_of_week('ds') }}
-#}
{% macro day_of_week(date_expr) -%}
    (extract(isodow from {{ date_expr }})::integer - 1)
{%- endmacro %}
