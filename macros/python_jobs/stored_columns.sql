{#-
    The column names of a source table as it is stored now, or none where the table does not
    exist yet (the Python job creates its tables on its first run). The job's staging models
    use it to read the table, or to stand in an empty set with the same typed columns.
    Usage: {%- set stored_columns = stored_columns(source('python_jobs', 'py_features_hist')) %}
-#}
{% macro stored_columns(relation) %}
    {%- if not execute -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set stored = adapter.get_relation(
        database=relation.database,
        schema=relation.schema,
        identifier=relation.identifier,
    ) -%}
    {%- if stored is none -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- do return(adapter.get_columns_in_relation(stored) | map(attribute='name') | list) -%}
{% endmacro %}
