{#-
    The feature columns of features_futr, in order (besides loto, unique_id, ds, is_future).
    int_calendar__dates_enriched produces exactly these next to ds; the mart and the tests
    read the names from here.
    Usage: {% for column in futr_columns() %} calendar.{{ column }}, {% endfor %}
-#}
{% macro futr_columns() %}
    {%- set cols = [] -%}
    {%- for part in ['year', 'quarter', 'month', 'day_of_month', 'day_of_year', 'week_of_year', 'day_of_week',
                     'days_in_month', 'is_weekend', 'leapyear', 'quarter_start', 'quarter_end', 'month_start',
                     'month_end'] -%}
        {%- do cols.append('futr_ds_' ~ part) -%}
    {%- endfor -%}
    {%- for cycle in ['day', 'week', 'month', 'quarter', 'hour', 'minute_of_day'] -%}
        {%- do cols.append('futr_ds_' ~ cycle ~ '_sin') -%}
        {%- do cols.append('futr_ds_' ~ cycle ~ '_cos') -%}
    {%- endfor -%}
    {%- for period in var('fourier_periods') -%}
        {%- for order in var('fourier_orders') -%}
            {%- do cols.append('futr_p' ~ period ~ '_k' ~ order ~ '_sin') -%}
            {%- do cols.append('futr_p' ~ period ~ '_k' ~ order ~ '_cos') -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for name in ['futr_is_holiday', 'futr_days_since_holiday', 'futr_days_until_holiday'] -%}
        {%- do cols.append(name) -%}
    {%- endfor -%}
    {{ return(cols) }}
{% endmacro %}
