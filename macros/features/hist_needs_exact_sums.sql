{#-
    Aggregate over the draws of one series: true where its window moments must come from exact
    numeric window sums (features_hist's exact_moments) rather than the double precision prefix
    sums, which are exact only for whole numbers and only while every prefix sum stays below
    2^53. That is a series holding a non-integer y (prices, a user's measurements), or a series
    of whole numbers large enough that a prefix sum over all its rows could pass 2^53: of y^p
    for the highest power a rolling statistic reads (hist_window_max_power(), at least 2), of
    row index * y, or of carry-over * y. A lottery's draws never need it. Wherever the prefix
    sums are exact, both ways give the same double precision values, so a series changing
    way as it grows leaves its earlier rows as they were.
    Usage: select loto, unique_id from draws group by loto, unique_id
           having {{ hist_needs_exact_sums('draws.y', 'draws.co') }}
-#}
{% macro hist_needs_exact_sums(y, co) -%}
    {%- set y_abs_max = 'max(abs(' ~ y ~ '))' -%}
    {%- set n_rows = 'count(*)::numeric' -%}
    (
        bool_or({{ y }} <> trunc({{ y }}))
        or {{ n_rows }} * {{ y_abs_max }} ^ {{ [2, hist_window_max_power()] | max }} >= 2 ^ 53
        or {{ n_rows }} * {{ n_rows }} * {{ y_abs_max }} >= 2 ^ 53
        or {{ n_rows }} * coalesce(max(abs({{ co }})), 0) * greatest({{ y_abs_max }}, 1) >= 2 ^ 53
    )
{%- endmacro %}
