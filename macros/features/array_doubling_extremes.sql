{#-
    One doubling step of the sparse table for rolling min/max, over per-series arrays: a
    subquery returning the arrays `max_name` and `min_name` whose element j is
    greatest(max_source[j], max_source[j - step]) and least(min_source[j], min_source[j - step]),
    where the sources hold blocks of `step` rows (step 1: the values themselves). An
    out-of-range subscript is NULL and greatest/least skip NULLs, so the first elements cover
    the rows that exist. The sources must hold no NULLs (subscripts then stay O(1)); n_rows is
    their length. The elements are aggregated in the order generate_series emits them (a
    function scan, nothing between it and the aggregate to reorder rows); an ORDER BY would
    sort every array again and cost more than the step itself.
    Usage: cross join lateral ({{ array_doubling_extremes('s.y_values', 's.y_values', 1, 's.n_rows',
           'y_max_block2', 'y_min_block2') }}) as doubled
-#}
{% macro array_doubling_extremes(max_source, min_source, step, n_rows, max_name, min_name) -%}
    select
        array_agg(greatest({{ max_source }}[element_index], {{ max_source }}[element_index - {{ step }}]))
            as {{ max_name }},
        array_agg(least({{ min_source }}[element_index], {{ min_source }}[element_index - {{ step }}]))
            as {{ min_name }}
    from generate_series(1, {{ n_rows }}) as element_index
{%- endmacro %}
