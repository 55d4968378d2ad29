{#-
    Window definition of a series of features_hist: the rows of one (loto, unique_id) in ds
    order. The same keys in the same order as the unique index of stg_lottery__draws, so
    PostgreSQL reads the rows in that order instead of sorting them.
    Usage: window running as ({{ hist_series_order('draws') }} rows between unbounded preceding and current row)
-#}
{% macro hist_series_order(relation) -%}
    partition by {{ relation }}.loto, {{ relation }}.unique_id
    order by {{ relation }}.ds
{%- endmacro %}
