-- One row per snapshot (loto, unique_id, as_of) the Python feature job has computed: its
-- per-series columns (py_stat_columns(), as in stg_python__features_stat) over the series' rows
-- with ds <= as_of, double precision, as the job wrote them. features_stat_history reads the
-- job through this model. A view.
-- Before the job has ever run, its table does not exist: the model is then an empty set
-- with the same typed columns, so the mart still builds (its Python columns NULL) and the
-- data test py_features_stat_history_covers_snapshots warns. A column the table lacks is NULL.
{%- set source_relation = source('python_jobs', 'py_features_stat_history') %}
{%- set stored = stored_columns(source_relation) %}
{%- set stored_names = stored or [] %}

with

py_stat_history as (
    {%- if stored is not none %}
        select * from {{ source_relation }}
    {%- else %}
        -- The job has not run yet: no rows, and every column below is NULL.
        select
            null::text as loto,
            null::text as unique_id,
            null::timestamp as as_of
        where false
    {%- endif %}
),

final as (
    select
        py_stat_history.loto,
        py_stat_history.unique_id,
        py_stat_history.as_of::timestamp as as_of,
        {%- for column in py_stat_columns() %}
            {%- set source_column = 'py_stat_history.' ~ column if column in stored_names else 'null' %}
            {{ source_column }}::double precision as {{ column }}
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from py_stat_history
)

select * from final
