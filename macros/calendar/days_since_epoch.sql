{#-
    Days from 1970-01-01 00:00 to a date or timestamp (negative before it), with the time of
    day as a fraction: the time index t of the Fourier terms, as
    `(ds - pd.Timestamp('1970-01-01')) / pd.Timedelta(days=1)` in pandas. Exact numeric, and a
    whole number at midnight, so a date's terms are those of its day index.
    Usage: {{ days_since_epoch('ds') }}
-#}
{% macro days_since_epoch(date_expr) -%}
    (extract(epoch from ({{ date_expr }})::timestamp) / 86400)
{%- endmacro %}
