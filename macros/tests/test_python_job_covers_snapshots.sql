{#-
    Freshness of the Python job's per-snapshot table: every snapshot (loto, unique_id, as_of)
    of `staged` (the last row of each period of var('stat_snapshot_cadence') of each series,
    as features_stat_history lists them) is in `model`, a staging model over the job's table,
    and `model` holds no other snapshot. One failing row per stale series, with the keys it
    lacks and holds in excess, as python_job_covers_staging reports them. Meant with severity
    warn. Reads staging only, so `dbt build --select staging` can run it.
    Usage (on stg_python__features_stat_history):
        data_tests:
          - python_job_covers_snapshots:
              arguments:
                staged: ref('stg_lottery__draws')
                job_table: py_features_stat_history
-#}
{% test python_job_covers_snapshots(model, staged, job_table) %}
{%- set job_relation = adapter.get_relation(
    database=model.database, schema=model.schema, identifier=job_table
) if execute else none %}

    with

    staged_keys as (
        select
            staged_rows.loto,
            staged_rows.unique_id,
            max(staged_rows.ds) as as_of
        from {{ staged }} as staged_rows
        group by
            staged_rows.loto,
            staged_rows.unique_id,
            {{ stat_snapshot_period_start('staged_rows.ds') }}
    ),

    job_keys as (
        select
            job_rows.loto,
            job_rows.unique_id,
            job_rows.as_of
        from {{ model }} as job_rows
    ),

    stale as (
        select
            staged_keys.loto,
            staged_keys.unique_id,
            1 as is_missing
        from staged_keys
        where not exists (
            select 1 from job_keys
            where
                job_keys.loto = staged_keys.loto
                and job_keys.unique_id = staged_keys.unique_id
                and job_keys.as_of = staged_keys.as_of
        )
        union all
        select
            job_keys.loto,
            job_keys.unique_id,
            0 as is_missing
        from job_keys
        where not exists (
            select 1 from staged_keys
            where
                staged_keys.loto = job_keys.loto
                and staged_keys.unique_id = job_keys.unique_id
                and staged_keys.as_of = job_keys.as_of
        )
    ),

    final as (
        select
            stale.loto,
            stale.unique_id,
            '{{ job_table }}' as job_table,
            count(*) filter (where stale.is_missing = 1) as keys_missing,
            count(*) filter (where stale.is_missing = 0) as keys_not_staged,
            {% if job_relation is none -%}
                '{{ job_table }} does not exist: run python -m python_jobs features'
            {%- else -%}
                '{{ job_table }} is behind stg_lottery__draws: run python -m python_jobs features'
            {%- endif %} as reason
        from stale
        group by
            stale.loto,
            stale.unique_id
    )

    select * from final

{% endtest %}
