-- One row per series (loto, unique_id) the Python feature job has computed: its per-series
-- columns (py_stat_columns(): catch22, entropy, spectral, matrix profile, autocorrelation,
-- tsfeatures, tsfresh), double precision, as the job wrote them. features_stat reads the job
-- through this model. A view.
-- Before the job has ever run, its table does not exist: the model is then an empty set
-- with the same typed columns, so features_stat still builds (its Python columns NULL) and
-- the data test py_features_stat_covers_staged_series warns. A column the table lacks is NULL.
{%- set source_relation = source('python_jobs', 'py_features_stat') %}
{%- set stored = stored_columns(source_relation) %}
{%- set stored_names = stored or [] %}

with

py_stat as (
    {%- if stored is not none %}
        select * from {{ source_relation }}
    {%- else %}
        -- The job has not run yet: no rows, and every column below is NULL.
        select
            null::text as loto,
            null::text as unique_id
        where false
    {%- endif %}
),

final as (
    select
        py_stat.loto,
        py_stat.unique_id,
        {%- for column in py_stat_columns() %}
            {{ 'py_stat.' ~ column if column in stored_names else 'null' }}::double precision as {{ column }}
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from py_stat
)

select * from final
