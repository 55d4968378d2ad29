{#-
    features_hist in parallel workers: the hooks that stage its series and the select that
    reads them.

    PostgreSQL runs no window function in a parallel worker, so a single select of the model
    keeps one core busy. The model is built in two statements instead, inside its transaction:
      1. features_hist_stage_series / features_hist_load_stage (pre-hooks): the window passes
         and the fold into arrays (features_hist_series_fold) write one row per series to an
         unlogged table, <model>__series, its arrays stored uncompressed (compressing them
         costs more than it saves), with whether the series takes exact sums. Then a
         function, <model>__series_rows, returns the rows of one series from its staged row:
         the steps of features_hist_row_moment_steps (the doubling blocks, the windows, the
         moments), with the series' arrays in PL/pgSQL variables (expanded once, so every
         subscript is O(1)); the exact sums' window passes run only for a series that takes
         them.
      2. The model's select (features_hist_staged_rows): a parallel scan of the staged series,
         each worker calling the function for its series, then the joins and the final
         columns in the same workers. min_parallel_table_scan_size = 0, set after the stage is
         loaded, lets the planner split a table of a few pages.
    The post-hook features_hist_drop_stage drops both before the transaction commits: no other
    session ever sees them, and a failed run rolls them back with everything else.
    features_hist_staged() is false where nothing runs the hooks: a unit test (dbt runs the
    model's select alone) and parsing or linting (execute is false). The model then computes the
    same steps in one select.
-#}
{% macro features_hist_staged() -%}
    {{ return(execute and model.resource_type != 'unit_test') }}
{%- endmacro %}


{% macro features_hist_stage_relations() -%}
    {%- set function_name = this.identifier ~ '__series_rows' -%}
    {{ return({
        'series': api.Relation.create(
            database=this.database, schema=this.schema, identifier=this.identifier ~ '__series'
        ),
        'row_type': api.Relation.create(
            database=this.database, schema=this.schema, identifier=this.identifier ~ '__series_row_type'
        ),
        'function': adapter.quote(this.schema) ~ '.' ~ adapter.quote(function_name),
    }) }}
{%- endmacro %}


{% macro features_hist_stage_series() -%}
    {%- set stage = features_hist_stage_relations() -%}
    {{ features_hist_drop_stage() }};
    create unlogged table {{ stage.series }} as
    {{ features_hist_stage_select(features_hist_params()) }}
    with no data
{%- endmacro %}


{% macro features_hist_stage_select(params) -%}
    {#- One row per series: series_arrays, and whether the series takes exact sums. -#}
    with
    {{ features_hist_imports() }},
    {{ features_hist_series_fold(params) }},
    {{ features_hist_exact_moments(params.windows, params.moment_windows, params.powers, params.fixed_window) }}
    select
        series_arrays.*,
        exact_series.loto is not null as needs_exact_sums
    from series_arrays
    left join exact_series
        on
            series_arrays.loto = exact_series.loto
            and series_arrays.unique_id = exact_series.unique_id
{%- endmacro %}


{% macro features_hist_load_stage() -%}
    {%- if execute -%}
        {%- set params = features_hist_params() -%}
        {%- set stage = features_hist_stage_relations() -%}
        {%- set columns = run_query(
            "select attribute.attname, format_type(attribute.atttypid, attribute.atttypmod), "
            ~ "column_type.typcategory = 'A' from pg_attribute as attribute "
            ~ "inner join pg_type as column_type on column_type.oid = attribute.atttypid "
            ~ "where attribute.attrelid = '" ~ stage.series ~ "'::regclass "
            ~ "and attribute.attnum > 0 and not attribute.attisdropped order by attribute.attnum"
        ).rows -%}
        {%- set arrays = columns | selectattr(2) | list %}
        alter table {{ stage.series }}
        {%- for column in arrays %}
            alter column {{ adapter.quote(column[0]) }} set storage external{{ ',' if not loop.last }}
        {%- endfor %};

        insert into {{ stage.series }}
        {{ features_hist_stage_select(params) }};

        create unlogged table {{ stage.row_type }} as
        with
        {{ features_hist_imports() }},
        series_arrays as (select * from {{ stage.series }}),
        {{ features_hist_row_moment_steps(params) }}
        select * from row_moments
        with no data;

        create function {{ stage.function }}(p_series {{ stage.series }})
        returns setof {{ stage.row_type }}
        language plpgsql stable parallel safe
        as $features_hist$
        declare
            {%- for column in arrays %}
                v_{{ column[0] }} {{ column[1] }} := p_series.{{ adapter.quote(column[0]) }};
            {%- endfor %}
        begin
            -- A series of whole numbers within the bound skips the exact sums' window passes.
            if p_series.needs_exact_sums then
                return query
                {{ features_hist_function_query(params, columns, true) }};
            else
                return query
                {{ features_hist_function_query(params, columns, false) }};
            end if;
        end
        $features_hist$;

        -- The staged table is a few pages: let the planner split it between workers.
        set local min_parallel_table_scan_size = 0
    {%- endif -%}
{%- endmacro %}


{% macro features_hist_function_query(params, columns, exact) -%}
    with
    exact_draws as not materialized (
        select * from {{ ref('stg_lottery__draws') }} as draws
        {%- if exact %}
            where draws.loto = p_series.loto and draws.unique_id = p_series.unique_id
        {%- else %}
            where false
        {%- endif %}
    ),

    position_gap_expected as (
        select * from {{ ref('int_hist__position_gap_expected') }} as expected
        where expected.loto = p_series.loto and expected.unique_id = p_series.unique_id
    ),

    series_arrays as (
        select
        {%- for column in columns %}
            {% if column[2] %}v_{{ column[0] }}{% else %}p_series.{{ adapter.quote(column[0]) }}{% endif %}
                as {{ adapter.quote(column[0]) }}{{ ',' if not loop.last }}
        {%- endfor %}
    ),

    {{ features_hist_row_moment_steps(params) }}

    select * from row_moments
{%- endmacro %}


{% macro features_hist_staged_rows() -%}
    {%- set stage = features_hist_stage_relations() -%}
    select series_rows.*
    from {{ stage.series }} as series
    cross join lateral {{ stage.function }}(series) as series_rows
{%- endmacro %}


{% macro features_hist_drop_stage() -%}
    {%- set stage = features_hist_stage_relations() -%}
    drop table if exists {{ stage.row_type }}, {{ stage.series }} cascade
{%- endmacro %}
