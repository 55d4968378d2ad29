{#-
    Creates the tables the Python feature job writes, if missing, and adds any feature column
    they lack, so the marts build (with those columns NULL) before the job has ever run.
    The job (python_jobs/job_io.py, ensure_tables) creates the same tables itself; a pytest
    keeps the two definitions equal.
    Usage (dbt_project.yml): on-run-start: ["{{ create_python_job_tables() }}"]
-#}
{% macro create_python_job_tables() %}
{% set schema = adapter.quote(target.schema) %}
create schema if not exists {{ schema }};

create table if not exists {{ schema }}.py_features_stat (
    loto text not null,
    unique_id text not null,
    computed_at timestamptz,
    primary key (loto, unique_id)
);
{% for col in py_stat_columns() %}
    alter table {{ schema }}.py_features_stat add column if not exists {{ adapter.quote(col) }} double precision;
{% endfor %}

create table if not exists {{ schema }}.py_features_hist (
    loto text not null,
    unique_id text not null,
    ds date not null,
    computed_at timestamptz,
    primary key (loto, unique_id, ds)
);
{% for col in py_hist_columns() %}
    alter table {{ schema }}.py_features_hist add column if not exists {{ adapter.quote(col) }} double precision;
{% endfor %}

create table if not exists {{ schema }}.py_job_runs (
    run_id text primary key,
    started_at timestamptz not null,
    finished_at timestamptz,
    status text not null,
    device text,
    scheduler text,
    families text [],
    feature_version text,
    series_total integer,
    series_computed integer,
    series_failed integer,
    rows_written bigint,
    seconds_per_family jsonb,
    seconds_total double precision,
    error text
);

create table if not exists {{ schema }}.py_job_errors (
    run_id text not null,
    loto text not null,
    unique_id text not null,
    family text not null,
    error text not null,
    recorded_at timestamptz not null default now(),
    primary key (run_id, loto, unique_id, family)
);

create table if not exists {{ schema }}.py_job_state (
    loto text not null,
    unique_id text not null,
    family text not null,
    feature_version text not null,
    n_rows integer not null,
    max_ds date,
    checksum text,
    status text not null,
    run_id text,
    computed_at timestamptz not null,
    primary key (loto, unique_id, family)
);
{% endmacro %}
