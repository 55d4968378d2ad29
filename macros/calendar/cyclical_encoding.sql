{#-
    The sin/cos pair of a value on a cycle of `period` steps: `<name>_sin`, `<name>_cos` =
    sin/cos(2 pi value / period), double precision. `period` may be an expression.
    Usage (in a select list): {{ cyclical_encoding('month - 1', 12, 'futr_ds_month') }},
-#}
{% macro cyclical_encoding(value_expr, period, name) -%}
    sin(2 * pi() * ({{ value_expr }})::double precision / ({{ period }})) as {{ name }}_sin,
        cos(2 * pi() * ({{ value_expr }})::double precision / ({{ period }})) as {{ name }}_cos
{%- endmacro %}
