{#-
    Sort key of a series (loto, unique_id) for hist_series_order: a 64-bit hash, cheap to
    compare. Only an accelerator: windows partition by it and by the keys themselves.
    Usage: {{ hist_series_key('draws') }} as series_key
-#}
{% macro hist_series_key(relation) -%}
    hashtextextended({{ relation }}.loto || '/' || {{ relation }}.unique_id, 0)
{%- endmacro %}
