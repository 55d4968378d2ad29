{#-
    Whether a year (an integer expression) is a Gregorian leap year, pandas
    `DatetimeIndex.is_leap_year`.
    Usage: {{ is_leap_year('extract(year from ds)::integer') }}
-#}
{% macro is_leap_year(year_expr) -%}
    (({{ year_expr }}) % 4 = 0 and (({{ year_expr }}) % 100 != 0 or ({{ year_expr }}) % 400 = 0))
{%- endmacro %}
