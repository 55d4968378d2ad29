{#-
    Per-row columns written by the Python job into py_features_hist, in registry order.
    Must equal python_jobs.features.registry.output_columns("hist") (a pytest keeps them equal).
    Usage: {% for col in py_hist_columns() %} ... {% endfor %}
-#}
{% macro py_hist_columns() %}
    {%- set cols = [] -%}
    {%- for stat in ['median', 'q25', 'q75'] -%}
        {%- for w in var('windows') -%}
            {%- do cols.append('hist_y_roll_' ~ stat ~ '_w' ~ w) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- do cols.append('hist_y_mp_left_m' ~ var('mp_window')) -%}
    {%- do cols.append('hist_y_iforest_score') -%}
    {{ return(cols) }}
{% endmacro %}
