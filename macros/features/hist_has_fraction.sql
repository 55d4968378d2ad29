{#-
    True where y is not a whole number. features_hist takes the window moments of a series
    holding such a value from exact numeric window sums (exact_windows) instead of the double
    precision prefix sums, which are exact for whole numbers only; tests/hist_y_sums_exact.sql
    checks the other series with the same test.
    Usage: where {{ hist_has_fraction('draws.y') }}
-#}
{% macro hist_has_fraction(y) -%}
    ({{ y }} <> trunc({{ y }}))
{%- endmacro %}
