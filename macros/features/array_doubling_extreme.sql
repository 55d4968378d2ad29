{#-
    One doubling step of the sparse table for rolling min/max, over a per-series array: the
    array whose element j is fn(source[j], source[j - step]), where source holds blocks of
    `step` rows (step 1: the values themselves). Out-of-range subscripts are NULL and
    greatest/least skip NULLs, so the first elements cover the rows that exist.
    fn is greatest or least; source an array expression without NULLs (subscripts stay O(1));
    n_rows its length.
    The elements come in the order generate_series emits them (a plain function scan, nothing
    to reorder them); an ORDER BY would sort every array again and cost more than the step.
    Usage: {{ array_doubling_extreme('greatest', 'series.y_values', 1, 'series.n_rows') }} as y_max_block2
-#}
{% macro array_doubling_extreme(fn, source, step, n_rows) -%}
    array(
        select {{ fn }}({{ source }}[element_index], {{ source }}[element_index - {{ step }}])
        from generate_series(1, {{ n_rows }}) as element_index
    )
{%- endmacro %}
