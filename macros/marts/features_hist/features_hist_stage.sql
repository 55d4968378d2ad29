{#-
    features_hist in parallel workers: the hooks that stage its series and the select that
    reads them.

    PostgreSQL runs no window function in a parallel worker, so a single select of the model
    keeps one core busy. The model is built in two statements instead, inside its transaction:
      1. features_hist_stage_series / features_hist_load_stage (pre-hooks): the rows to compute
         (series_draws, features_hist_series_draws) gathered into arrays, one row per series,
         in an unlogged table, <model>__series, its arrays stored uncompressed (compressing
         them costs more than it saves), with whether the series takes exact sums. A function,
         <model>__series_rows, then returns the rows of one series from its staged row: the
         series' rows unnested, its two window passes and its fold (features_hist_stage_fold:
         features_hist_passes_and_fold, as the single select runs it) into PL/pgSQL variables
         (an array variable is expanded once, so every subscript is O(1)), then the steps of
         features_hist_row_moment_steps (the doubling blocks, the windows, the moments); the
         exact sums' window passes run only for a series that takes them. An unlogged table
         with no rows, <model>__series_fold_type, gives the variables their types, and
         <model>__series_row_type the function's rows.
      2. The model's select (features_hist_staged_rows): a parallel scan of the staged series,
         each worker calling the function for its series, then the joins and the final
         columns in the same workers. min_parallel_table_scan_size = 0, set after the stage is
         loaded, lets the planner split a table of a few pages.
    The post-hook features_hist_drop_stage drops them all before the transaction commits: no other
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
    {%- set relations = {'function': adapter.quote(this.schema) ~ '.' ~ adapter.quote(function_name)} -%}
    {%- for name, suffix in [('series', '__series'), ('fold_type', '__series_fold_type'), ('row_type', '__series_row_type')] -%}
        {%- do relations.update({name: api.Relation.create(
            database=this.database, schema=this.schema, identifier=this.identifier ~ suffix
        )}) -%}
    {%- endfor -%}
    {{ return(relations) }}
{%- endmacro %}


{#- The columns of series_draws (features_hist_series_draws) after the series' keys: one array
    each in a staged series. -#}
{% macro features_hist_draw_columns() -%}
    {{ return(['ds', 'y', 'co', 'is_emitted', 'earlier_y_max', 'earlier_y_min']) }}
{%- endmacro %}


{% macro features_hist_stage_series() -%}
    {%- set stage = features_hist_stage_relations() -%}
    {{ features_hist_drop_stage() }};
    {%- set params = features_hist_params() %}
    create unlogged table {{ stage.series }} as
    {{ features_hist_stage_select(params) }}
    with no data;

    create unlogged table {{ stage.fold_type }} as
    select folded.*
    from {{ stage.series }} as p_series
    cross join lateral ({{ features_hist_stage_fold(params, 'p_series') }}) as folded
    with no data
{%- endmacro %}


{% macro features_hist_stage_select(params) -%}
    {#- One row per series: the arrays of its rows of series_draws, and whether the series takes
        exact sums. The arrays are in no particular order (each is aligned with the others):
        the function's window passes order the rows by ds. -#}
    with
    {{ features_hist_imports() }},
    {{ features_hist_series_draws(params) }},
    {{ features_hist_exact_moments(params.windows, params.moment_windows, params.powers, params.fixed_window) }},
    series_draw_arrays as (
        select
            series_draws.loto,
            series_draws.unique_id,
            {%- for column in features_hist_draw_columns() %}
                array_agg(series_draws.{{ column }}) as {{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from series_draws
        group by
            series_draws.loto,
            series_draws.unique_id
    )
    select
        series_draw_arrays.*,
        exact_series.loto is not null as needs_exact_sums
    from series_draw_arrays
    left join exact_series
        on
            series_draw_arrays.loto = exact_series.loto
            and series_draw_arrays.unique_id = exact_series.unique_id
{%- endmacro %}


{% macro features_hist_unstaged_draws(series) -%}
    {#- series_draws again, from the arrays of the staged series `series`. -#}
    series_draws as (
        select
            {{ series }}.loto,
            {{ series }}.unique_id,
            {%- for column in features_hist_draw_columns() %}
                draw.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from unnest(
            {%- for column in features_hist_draw_columns() %}
                {{ series }}.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        ) as draw ({{ features_hist_draw_columns() | join(', ') }})
    )
{%- endmacro %}


{% macro features_hist_stage_fold(params, series) -%}
    {#- The window passes and the fold of the staged series `series`: one row of series_arrays. -#}
    with
    {{ features_hist_unstaged_draws(series) }},
    {{ features_hist_passes_and_fold(params) }}
    select * from series_arrays
{%- endmacro %}


{% macro features_hist_columns_of(relation) -%}
    {#- (name, type) of each column of `relation`, in order. -#}
    {{ return(run_query(
        "select attribute.attname, format_type(attribute.atttypid, attribute.atttypmod), "
        ~ "column_type.typcategory = 'A' from pg_attribute as attribute "
        ~ "inner join pg_type as column_type on column_type.oid = attribute.atttypid "
        ~ "where attribute.attrelid = '" ~ relation ~ "'::regclass "
        ~ "and attribute.attnum > 0 and not attribute.attisdropped order by attribute.attnum"
    ).rows) }}
{%- endmacro %}


{% macro features_hist_load_stage() -%}
    {%- if execute -%}
        {%- set params = features_hist_params() -%}
        {%- set stage = features_hist_stage_relations() -%}
        {%- set arrays = features_hist_columns_of(stage.series) | selectattr(2) | list %}
        {%- set folded = features_hist_columns_of(stage.fold_type) %}
        alter table {{ stage.series }}
        {%- for column in arrays %}
            alter column {{ adapter.quote(column[0]) }} set storage external{{ ',' if not loop.last }}
        {%- endfor %};

        insert into {{ stage.series }}
        {{ features_hist_stage_select(params) }};

        create unlogged table {{ stage.row_type }} as
        with
        {{ features_hist_imports() }},
        series_arrays as (select * from {{ stage.fold_type }}),
        {{ features_hist_row_moment_steps(params) }}
        select * from row_moments
        with no data;

        create function {{ stage.function }}(p_series {{ stage.series }})
        returns setof {{ stage.row_type }}
        language plpgsql stable parallel safe
        as $features_hist$
        declare
            {%- for column in folded %}
                v_{{ column[0] }} {{ column[1] }};
            {%- endfor %}
        begin
            -- The series' window passes and its fold, in this process. PL/pgSQL expands an
            -- array variable once, so every subscript below is O(1).
            select
                {%- for column in folded %}
                    folded.{{ adapter.quote(column[0]) }}{{ ',' if not loop.last }}
                {%- endfor %}
            into
                {%- for column in folded %}
                    v_{{ column[0] }}{{ ',' if not loop.last }}
                {%- endfor %}
            from ({{ features_hist_stage_fold(params, 'p_series') }}) as folded;
            -- A series of whole numbers within the bound skips the exact sums' window passes.
            if p_series.needs_exact_sums then
                return query
                {{ features_hist_function_query(params, folded, true) }};
            else
                return query
                {{ features_hist_function_query(params, folded, false) }};
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
            v_{{ column[0] }} as {{ adapter.quote(column[0]) }}{{ ',' if not loop.last }}
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
    drop table if exists {{ stage.row_type }}, {{ stage.fold_type }}, {{ stage.series }} cascade
{%- endmacro %}
