{#-
    The carry-over's n-scaled centred sum of squares over the `window` rows ending at a row,
    n sum(co^2) - sum(co)^2, from the prefix arrays of features_hist (`slot` names the
    columns of `values`: co, co_sum, co_sq_sum, co_count, co_change_count). The correlation
    of y and co is NULL where it is 0.

    * 0 where the window is incomplete or holds a NULL carry-over (fewer than `window`
      non-NULL values), and where the carry-over never changes inside the window: exactly
      0 for a constant window, decided on integer counts, never on rounded sums.
    * Otherwise from the prefix sums in double precision. co^2 is beyond 2^53, so a prefix sum
      of it rounds: the window value's error stays below about 2 i 2^-53 n P, i the row's
      index and P the prefix sum of co^2 up to the row. Where the value is at least 1e-3 n P
      its relative error is below i * 2.2e-13 (5e-10 for 2,000 draws).
    * Below that (a carry-over that barely moves against its size), exactly: numeric sums
      over the window's values, read as a slice of the array. Rare, and a few microseconds
      per row: real carry-overs jump by millions of yen.

    Usage: {{ carry_over_var_n('series.row_values', 'series_row.i', 30, slot) }} as co_var_n
-#}
{% macro carry_over_var_n(values, row, window, slot) -%}
    {%- set co_sum = array_window_sum(values, row, window, slot.co_sum) -%}
    {%- set co_sq_sum = array_window_sum(values, row, window, slot.co_sq_sum) -%}
    {%- set var_n = '(' ~ window ~ ' * ' ~ co_sq_sum ~ ' - ' ~ co_sum ~ ' * ' ~ co_sum ~ ')' -%}
    case
        when
            {{ array_window_sum(values, row, window, slot.co_count) }} is distinct from {{ window }}
            or {{ array_window_sum(values, row, window - 1, slot.co_change_count) }} = 0
            then 0
        when {{ var_n }} >= 1e-3 * {{ window }} * {{ values }}[{{ row }}][{{ slot.co_sq_sum }}]
            then {{ var_n }}
        else (
            select ({{ window }} * sum(window_co * window_co) - sum(window_co) * sum(window_co))::double precision
            from unnest(
                {{ values }}[{{ row }} - {{ window - 1 }}:{{ row }}][{{ slot.co }}:{{ slot.co }}]::numeric[]
            ) as window_co
        )
    end
{%- endmacro %}
