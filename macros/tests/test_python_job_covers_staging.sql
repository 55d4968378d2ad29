{#-
    Freshness of a Python job table: every (loto, unique_id) series of `staged` has all its
    `grain` keys in `model` (a staging model over the job's table), and `model` holds no key
    that is no longer staged (a deleted or moved draw). One failing row per stale series,
    naming the job table, how many keys it lacks and how many it holds in excess, and why;
    when the table does not exist at all, every series fails with that reason. Meant with
    severity warn: the marts still build, with the job's columns NULL (or outdated) where it
    is behind, until `python -m python_jobs features` runs again.
    One full outer join of the two key sets (a hash join: each side read once, no sort), then
    only its unmatched rows are counted: on a job that has caught up nothing is left to count.
    A staged key repeated in `staged` joins twice but is counted once (count distinct), so the
    figures are those of the key sets.
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
        select
            {{ column_list }},
            true as is_staged
        from {{ staged }}
    ),

    job_keys as (
        select
            {{ column_list }},
            true as is_computed
        from {{ model }}
    ),

    stale as (
        select
            {% for column in grain -%}
                coalesce(staged_keys.{{ column }}, job_keys.{{ column }}) as {{ column }},
            {% endfor %}
            job_keys.is_computed is null as is_missing
        from staged_keys
        full outer join job_keys
            on
                {% for column in grain -%}
                    {% if not loop.first %}and {% endif %}job_keys.{{ column }} = staged_keys.{{ column }}
                {% endfor %}
        where
            job_keys.is_computed is null
            or staged_keys.is_staged is null
    ),

    final as (
        select
            stale.loto,
            stale.unique_id,
            '{{ job_table }}' as job_table,
            count(distinct ({{ column_list }})) filter (where stale.is_missing) as keys_missing,
            count(distinct ({{ column_list }})) filter (where not stale.is_missing) as keys_not_staged,
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
