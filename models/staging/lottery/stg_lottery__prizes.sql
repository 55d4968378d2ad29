-- One row per (loto, ds, tier): the prize table of every draw whose results file had one.
-- The raw table keeps what the file said; here a tier nobody won has 0 winners and a NULL
-- prize (files write 0, 該当なし or nothing for it). Small (tiers x draws): a plain table.
-- Ingestion creates the raw table; where draws were written some other way and it does not
-- exist, the model is empty rather than failing, like a lottery without prize data.
-- The raw table keys a prize table by its draw's day (a date); ds here is that day as a
-- timestamp (midnight), the type and value of the draw's ds in stg_lottery__draws, so the
-- marts join prizes to draws on equal timestamps.
{{
    config(
        indexes=[{'columns': ['loto', 'ds', 'tier'], 'unique': true}],
        post_hook=['analyze {{ this }}'],
    )
}}

{%- set raw_prizes = source('lottery', 'raw_lottery_prizes') -%}
{%- set raw_exists = true -%}
{%- if execute -%}
    {%- set found = adapter.get_relation(raw_prizes.database, raw_prizes.schema, raw_prizes.identifier) -%} -- noqa: TMP
    {%- set raw_exists = found is not none -%}
{%- endif %}

{%- if raw_exists -%}
    {%- set prizes_from = raw_prizes -%}
{%- else -%}
    {%- set prizes_from -%}
        (select null::text as loto, null::timestamp as ds, null::integer as tier,
            null::bigint as winners, null::bigint as prize where false)
    {%- endset -%}
{%- endif %}

with

prizes as (
    select
        raw_prizes.loto,
        raw_prizes.ds,
        raw_prizes.tier,
        raw_prizes.winners,
        raw_prizes.prize
    from {{ prizes_from }} as raw_prizes
),

final as (
    select
        prizes.loto::text as loto,
        prizes.ds::timestamp as ds,
        prizes.tier::integer as tier,
        prizes.winners::bigint as winners,
        (case when prizes.winners = 0 then null else prizes.prize end)::bigint as prize
    from prizes
)

select * from final
