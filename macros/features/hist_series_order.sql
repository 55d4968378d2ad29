{#-
    Window definition of a series of features_hist: the rows of one (loto, unique_id) in ds
    order. The relation carries series_key, a 64-bit hash of the two keys, placed first: sorting
    a million rows on an integer is several times faster than on two locale-collated strings,
    while loto and unique_id after it keep two series apart even if their hashes collide.
    Usage: window running as ({{ hist_series_order('draws') }} rows between unbounded preceding and current row)
-#}
{% macro hist_series_order(relation) -%}
    partition by {{ relation }}.series_key, {{ relation }}.loto, {{ relation }}.unique_id
    order by {{ relation }}.ds
{%- endmacro %}
