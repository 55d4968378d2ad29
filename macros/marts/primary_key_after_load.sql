{#-
    Post-hook of a mart: its primary key, added once the rows are loaded. A primary key in the
    model contract is created with the empty table, so the load would maintain its index row
    by row; added afterwards, the index is built in one sorted pass and the constraint takes
    it. A table rebuilt in full gets it on every build; an incremental model on its first
    build or a full refresh; otherwise the stored table keeps its key and nothing is done. A
    stored table from before this hook, keyed by a unique index on the same columns, has that
    index turned into the key (no second index).
    The constraint takes PostgreSQL's default name (<table>_pkey, or _pkey1 while the table
    being replaced still holds that name).
    Usage: config(post_hook=["{{ primary_key_after_load(['loto', 'unique_id', 'ds']) }}"])
-#}
{% macro primary_key_after_load(columns) -%}
    do $primary_key$
    declare
        key_index text;
    begin
        if exists (
            select 1 from pg_constraint
            where conrelid = '{{ this }}'::regclass and contype = 'p'
        ) then
            return;
        end if;
        select index_class.relname into key_index
        from pg_index
        inner join pg_class as index_class on pg_index.indexrelid = index_class.oid
        where
            pg_index.indrelid = '{{ this }}'::regclass
            and pg_index.indisunique and pg_index.indisvalid
            and pg_index.indpred is null and pg_index.indexprs is null
            and pg_index.indkey::text = (
                select string_agg(pg_attribute.attnum::text, ' ' order by key_column.position)
                from unnest(array['{{ columns | join("', '") }}']) with ordinality
                    as key_column (name, position)
                inner join pg_attribute
                    on
                        pg_attribute.attrelid = '{{ this }}'::regclass
                        and pg_attribute.attname = key_column.name
            )
        limit 1;
        if key_index is null then
            alter table {{ this }} add primary key ({{ columns | join(', ') }});
        else
            execute format('alter table %s add primary key using index %I', '{{ this }}', key_index);
        end if;
    end
    $primary_key$
{%- endmacro %}
