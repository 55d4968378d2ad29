{#-
    Window definition of a series of features_hist: the rows of one (loto, unique_id) in ds
    order. The keys are compared byte-wise (collate "C"): only the rows within a series need an
    order, and byte order sorts several times faster than a locale's.
    Usage: window running as ({{ hist_series_order('draws') }} rows between unbounded preceding and current row)
-#}
{% macro hist_series_order(relation) -%}
    partition by {{ relation }}.loto collate "C", {{ relation }}.unique_id collate "C"
    order by {{ relation }}.ds
{%- endmacro %}
