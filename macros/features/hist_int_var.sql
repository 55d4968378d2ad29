{#-
    A dbt var holding a number or a list of numbers, for Jinja that compares or sorts them.
    sqlfluff's jinja templater (make lint) answers every var() with a placeholder string; the
    model is then linted with `lint_value` instead, which only has to have the right shape.
    Usage: {% set windows = hist_int_var('windows', [3, 7]) %}
-#}
{% macro hist_int_var(name, lint_value) %}
    {%- set value = var(name) -%}
    {%- if value is string -%}
        {{ return(lint_value) }}
    {%- endif -%}
    {{ return(value) }}
{% endmacro %}
