{#-
    Rolling min or max over the `window` rows ending at `position`, from the doubling blocks
    (array_doubling_extremes): two overlapping blocks of the largest size k <= window, the
    one ending at the row and the one ending window - k rows earlier. O(1) per row.
    fn is greatest or least; block_prefix names the block arrays (block_prefix ~ k); source is
    the array of values (window 1). The caller masks rows with fewer than `window` rows.
    Usage: {{ array_rolling_extreme('greatest', 'series.y_max_block', 'series.y_values', 'row_index', 30) }}
-#}
{% macro array_rolling_extreme(fn, block_prefix, source, position, window) -%}
    {%- set sizes = rolling_extreme_block_sizes([window]) -%}
    {%- if window < 1 -%}
        {{ exceptions.raise_compiler_error("array_rolling_extreme: window must be at least 1, got " ~ window) }}
    {%- elif window == 1 -%}
        {{ source }}[{{ position }}]
    {%- else -%}
        {%- set size = sizes | last -%}
        {%- if size == window -%}
            {{ block_prefix }}{{ size }}[{{ position }}]
        {%- else -%}
            {{ fn }}(
                {{ block_prefix }}{{ size }}[{{ position }}],
                {{ block_prefix }}{{ size }}[{{ position }} - {{ window - size }}]
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
