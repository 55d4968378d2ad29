-- features_hist computes the windows of a series of whole numbers (every lottery's draws) from
-- prefix sums in double precision, exact while every sum stays below 2^53; a series holding a
-- non-integer y (hist_has_fraction) takes exact numeric window sums instead, whatever its
-- size. A row here names a series of whole numbers for which that bound no longer holds: prefix
-- sums of y^2 (and of the higher powers a rolling statistic reads, hist_window_max_power()),
-- index * y or carry-over * y that could pass 2^53, so its moments would round.
with

draws as (
    select
        loto,
        unique_id,
        y,
        co
    from {{ ref('stg_lottery__draws') }}
),

series_bounds as (
    select
        draws.loto,
        draws.unique_id,
        count(*)::numeric as n_rows,
        max(abs(draws.y)) as y_abs_max,
        coalesce(max(abs(draws.co)), 0)::numeric as co_abs_max,
        bool_or({{ hist_has_fraction('draws.y') }}) as has_fraction
    from draws
    group by
        draws.loto,
        draws.unique_id
),

final as (
    select *
    from series_bounds
    where
        not has_fraction
        and (
            n_rows * y_abs_max ^ {{ [2, hist_window_max_power()] | max }} >= 2 ^ 53
            or n_rows * n_rows * y_abs_max >= 2 ^ 53
            or n_rows * co_abs_max * greatest(y_abs_max, 1) >= 2 ^ 53
        )
)

select * from final
