{#-
    Sum over the `window` rows ending at a row, from a prefix-sum array: element p holds the
    sum of the first p - 1 rows (element 1 is 0), so the window is the difference of two
    elements. NULL where the series has fewer than `window` rows up to the row (the earlier
    subscript is out of range). prefix_position is the row's index + 1; column picks the
    column of a two-dimensional prefix array (omit it for a one-dimensional one).
    Usage: {{ array_window_sum('series.prefix_sums', 'prefix_position', 30, 1) }} as y_sum_w30
-#}
{% macro array_window_sum(prefix, prefix_position, window, column=none) -%}
    {%- set suffix = '' if column is none else '[' ~ column ~ ']' -%}
    ({{ prefix }}[{{ prefix_position }}]{{ suffix }} - {{ prefix }}[{{ prefix_position }} - {{ window }}]{{ suffix }})
{%- endmacro %}
