-- One row per (loto, unique_id, ds) the Python feature job has computed: its per-row columns
-- (py_hist_columns(): rolling median and quartiles, left matrix profile, isolation forest
-- score), double precision, as the job wrote them. The marts read the job through this model.
-- A view: the table holds a million rows on a large panel and is read once per build.
-- Before the job has ever run, its table does not exist: the model is then an empty set
-- with the same typed columns, so the marts still build (their Python columns NULL) and the
-- data test py_features_hist_covers_staged_draws warns. A column the table lacks (the job
-- has not run since the column was added) is NULL, not an error.
{%- set source_relation = source('python_jobs', 'py_features_hist') %}
{%- set stored = stored_columns(source_relation) %}
{%- set stored_names = stored or [] %}

with

py_hist as (
    {%- if stored is not none %}
        select * from {{ source_relation }}
    {%- else %}
        -- The job has not run yet: no rows, and every column below is NULL.
        select
            null::text as loto,
            null::text as unique_id,
            null::date as ds
        where false
    {%- endif %}
),

final as (
    select
        py_hist.loto,
        py_hist.unique_id,
        py_hist.ds,
        {%- for column in py_hist_columns() %}
            {{ 'py_hist.' ~ column if column in stored_names else 'null' }}::double precision as {{ column }}
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from py_hist
)

select * from final
