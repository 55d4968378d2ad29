-- Internal consistency of the features_stat moments: min <= mean <= max, range = max - min,
-- std >= 0, cv = std / mean, and the values inside the position's number range where known.
with

stat as (
    select * from {{ ref('features_stat') }}
),

final as (
    select
        stat.loto,
        stat.unique_id,
        stat.stat_y_global_mean,
        stat.stat_y_global_std,
        stat.stat_y_global_min,
        stat.stat_y_global_max,
        stat.stat_y_global_range,
        stat.stat_y_global_cv
    from stat
    where
        stat.stat_y_global_min > stat.stat_y_global_mean
        or stat.stat_y_global_mean > stat.stat_y_global_max
        or stat.stat_y_global_range != stat.stat_y_global_max - stat.stat_y_global_min
        or stat.stat_y_global_std < 0
        or abs(stat.stat_y_global_cv - stat.stat_y_global_std / stat.stat_y_global_mean)
        > 1e-12 * abs(stat.stat_y_global_cv)
        or stat.stat_y_global_min < stat.stat_loto_number_range_min
        or stat.stat_y_global_max > stat.stat_loto_number_range_max
        or stat.stat_loto_type != stat.loto
)

select * from final
