{#-
    Whole days from 1970-01-01 to a date (negative before it): the time index t of the
    Fourier terms, as `(ds - pd.Timestamp('1970-01-01')).days` in pandas.
    Usage: {{ days_since_epoch('ds') }}
-#}
{% macro days_since_epoch(date_expr) -%}
    ({{ date_expr }} - date '1970-01-01')
{%- endmacro %}
