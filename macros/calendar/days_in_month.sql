{#-
    Number of days in the month of a date (28..31), pandas `DatetimeIndex.days_in_month`.
    Usage: {{ days_in_month('ds') }}
-#}
{% macro days_in_month(date_expr) -%}
    extract(day from date_trunc('month', {{ date_expr }}) + interval '1 month - 1 day')::integer
{%- endmacro %}
