-- One row per (loto, ds) that has prize data in stg_lottery__prizes: the draw's prize money.
--   hist_draw_prize1_winners: tier-1 winners;
--   hist_draw_prize1_payout: tier-1 winners x prize per winner (0 where nobody won);
--   hist_draw_payout_total: winners x prize summed over every tier of the draw.
-- A draw without prize rows has no row here, so the marts show NULL for it.

with

prizes as (
    select * from {{ ref('stg_lottery__prizes') }}
),

final as (
    select
        prizes.loto,
        prizes.ds,
        (sum(prizes.winners) filter (where prizes.tier::text = '1'))::bigint as hist_draw_prize1_winners,
        coalesce(
            sum(prizes.winners * coalesce(prizes.prize, 0)) filter (where prizes.tier::text = '1'), 0
        )::double precision as hist_draw_prize1_payout,
        sum(prizes.winners * coalesce(prizes.prize, 0))::double precision as hist_draw_payout_total
    from prizes
    group by
        prizes.loto,
        prizes.ds
)

select * from final
