{#-
    How a table of this project is created (replaces dbt-postgres' macro of the same name).

    A table with an enforced contract is created by CREATE TABLE ... AS, its columns in the
    contract's order, and then given the contract's constraints by ALTER TABLE. dbt-postgres
    instead creates it empty with the constraints and fills it by INSERT ... SELECT, for which
    PostgreSQL plans no parallel workers: features_hist's select runs in them
    (macros/marts/features_hist/features_hist_stage.sql). The table is the same either way: dbt
    first checks the select's column names and types against the contract
    (get_assert_columns_equivalent, which fails the build on any difference), the columns take
    the select's types, and every constraint is added before the model's transaction commits
    (SET NOT NULL checks the loaded rows once). Column constraints: not_null, unique,
    primary_key and check; model constraints: whatever dbt renders for PostgreSQL.
    Everything else (temporary tables, tables without a contract) is created as dbt-postgres
    creates it.
-#}
{% macro postgres__create_table_as(temporary, relation, sql) -%}
    {%- set unlogged = config.get('unlogged', default=false) -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {%- set contract_config = config.get('contract') -%}
    {%- set enforced = contract_config.enforced and not temporary -%}
    {{ sql_header if sql_header is not none }}
    {% if contract_config.enforced -%}
        {{ get_assert_columns_equivalent(sql) }}
    {%- endif %}
    create {% if temporary -%}
        temporary
    {%- elif unlogged -%}
        unlogged
    {%- endif %} table {{ relation }}
    as (
        {{ get_select_subquery(sql) if enforced else sql }}
    );
    {%- if enforced %}
        {{ contract_constraints_sql(relation) }}
    {%- endif %}
{%- endmacro %}


{% macro contract_constraints_sql(relation) -%}
    {%- set clauses = [] -%}
    {%- for column in model['columns'].values() -%}
        {%- set name = adapter.quote(column['name']) if column.get('quote') else column['name'] -%}
        {%- for constraint in column.get('constraints', []) -%}
            {%- set kind = constraint['type'] -%}
            {%- set named = '' -%}
            {%- if constraint.get('name') -%}
                {%- set named = 'constraint ' ~ adapter.quote(constraint['name']) ~ ' ' -%}
            {%- endif -%}
            {%- if kind == 'not_null' -%}
                {%- do clauses.append('alter column ' ~ name ~ ' set not null') -%}
            {%- elif kind == 'unique' -%}
                {%- do clauses.append('add ' ~ named ~ 'unique (' ~ name ~ ')') -%}
            {%- elif kind == 'primary_key' -%}
                {%- do clauses.append('add ' ~ named ~ 'primary key (' ~ name ~ ')') -%}
            {%- elif kind == 'check' -%}
                {%- do clauses.append('add ' ~ named ~ 'check (' ~ constraint['expression'] ~ ')') -%}
            {%- else -%}
                {{ exceptions.raise_compiler_error(
                    "column " ~ column['name'] ~ " of " ~ relation ~ ": a " ~ kind
                    ~ " constraint is declared at the model level here (constraints: under the model)"
                ) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for rendered in adapter.render_raw_model_constraints(raw_constraints=model.get('constraints', [])) -%}
        {%- do clauses.append('add ' ~ rendered) -%}
    {%- endfor -%}
    {%- if clauses %}
        alter table {{ relation }} {{ clauses | join(', ') }};
    {%- endif %}
{%- endmacro %}
