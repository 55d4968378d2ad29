{#-
    The start of the calendar period a timestamp falls in, by var('stat_snapshot_cadence'):
    `yearly` truncates to the year, `monthly` to the month. The last row of each period of a
    series is a snapshot of features_stat_history; the Python job groups the rows the same way
    (python_jobs/job/reading.py, `snapshot_summary`), so both list the same snapshots.
    Usage: {{ stat_snapshot_period_start('draws.ds') }}
-#}
{% macro stat_snapshot_period_start(column) %}
    {%- set periods = {'yearly': 'year', 'monthly': 'month'} -%}
    {%- set cadence = var('stat_snapshot_cadence', 'yearly') -%}
    {#- sqlfluff's templater answers var() with a placeholder: the check waits for a real run -#}
    {%- if cadence not in periods and execute -%}
        {{ exceptions.raise_compiler_error(
            "var('stat_snapshot_cadence') must be yearly or monthly, not " ~ cadence
        ) }}
    {%- endif -%}
    date_trunc('{{ periods.get(cadence, 'year') }}', {{ column }})
{%- endmacro %}
