-- TEMP (replaced at merge by the ingest branch's model)
with prizes as (
    select * from {{ source('lottery', 'raw_lottery_prizes') }}
),
final as (
    select prizes.loto::text as loto, prizes.ds::date as ds, prizes.tier::text as tier,
        prizes.winners::bigint as winners, prizes.prize::bigint as prize
    from prizes
)
select * from final
