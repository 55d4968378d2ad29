-- One row per (loto, ds, tier): the prize table of every draw whose results file had one.
-- The raw table keeps what the file said; here a tier nobody won has 0 winners and a NULL
-- prize (files write 0, 該当なし or nothing for it). Small (tiers x draws): a plain table.
{{
    config(
        indexes=[{'columns': ['loto', 'ds', 'tier'], 'unique': true}],
        post_hook=['analyze {{ this }}'],
    )
}}

with

prizes as (
    select * from {{ source('lottery_prizes', 'raw_lottery_prizes') }}
),

final as (
    select
        prizes.loto::text as loto,
        prizes.ds::date as ds,
        prizes.tier::integer as tier,
        prizes.winners::bigint as winners,
        (case when prizes.winners = 0 then null else prizes.prize end)::bigint as prize
    from prizes
)

select * from final
