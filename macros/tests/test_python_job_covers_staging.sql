{#-
    Freshness of a Python job table: every (loto, unique_id) series of `staged` has all its
    `grain` keys in `model` (a staging model over the job's table), and `model` holds no key
    that is no longer staged (a deleted or moved draw). One failing row per stale series,
    naming the job table, how many keys it lacks and how many it holds in excess, and why;
    when the table does not exist at all, every series fails with that reason. Meant with
    severity warn: the marts still build, with the job's columns NULL (or outdated) where it
    is behind, until `python -m python_jobs features` runs again.
    Usage (on stg_python__features_hist):
        data_tests:
          - python_job_covers_staging:
              arguments:
                staged: ref('stg_lottery__draws')
                grain: [loto, unique_id, ds]
                job_table: py_features_hist
-#}
{% test python_job_covers_staging(model, staged, grain, job_table) %}
{%- set job_relation = adapter.get_relation(
    database=model.database, schema=model.schema, identifier=job_table
) if execute else none %}
{%- set column_list = grain | join(', ') %}

    with

    staged_keys as (
        select distinct {{ column_list }}
        from {{ staged }}
    ),

    job_keys as (
        select {{ column_list }}
        from {{ model }}
    ),

    missing as (
        select
            staged_keys.loto,
            staged_keys.unique_id,
            1 as is_missing
        from staged_keys
        where not exists (
            select 1 from job_keys
            where
                {% for column in grain -%}
                    {% if not loop.first %}and {% endif %}job_keys.{{ column }} = staged_keys.{{ column }}
                {% endfor %}
        )
    ),

    extra as (
        select
            job_keys.loto,
            job_keys.unique_id,
            0 as is_missing
        from job_keys
        where not exists (
            select 1 from staged_keys
            where
                {% for column in grain -%}
                    {% if not loop.first %}and {% endif %}staged_keys.{{ column }} = job_keys.{{ column }}
                {% endfor %}
        )
    ),

    stale as (
        select * from missing
        union all
        select * from extra
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
