{#-
    True where a position is a main number (N1..Nk), as stg_lottery__draws names them; bonus
    positions are B1..Bb. The domain counts of features_hist look at main numbers only.
    Usage: where {{ hist_is_main_number('draws.unique_id') }}
-#}
{% macro hist_is_main_number(unique_id) -%}
    ({{ unique_id }} ~ '^N[0-9]+$')
{%- endmacro %}
