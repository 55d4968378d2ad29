{#-
    Block sizes of the doubling (sparse-table) scheme for rolling min/max: 2, 4, 8, ... up to
    the largest power of two not above the longest window. Block k holds the extreme of the k
    rows ending at each row; block 2k is built from two blocks k, and a window of w rows is
    covered by two overlapping blocks of the largest k <= w (see array_rolling_extreme).
    Usage: {% for size in rolling_extreme_block_sizes(var('windows')) %} ... {% endfor %}
-#}
{% macro rolling_extreme_block_sizes(windows) %}
    {%- set sizes = [] -%}
    {%- set longest = windows | max -%}
    {%- for exponent in range(1, 64) -%}
        {%- if 2 ** exponent <= longest -%}
            {%- do sizes.append(2 ** exponent) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(sizes) }}
{% endmacro %}
