{#-
    Whether a date falls in the New Year break of the Japanese lotteries, when no draw is
    scheduled: 31 December and 1, 2 and 3 January.
    Usage: where not {{ is_new_year_break('candidate_date') }}
-#}
{% macro is_new_year_break(date_expr) -%}
    (to_char({{ date_expr }}, 'MM-DD') in ('12-31', '01-01', '01-02', '01-03'))
{%- endmacro %}
