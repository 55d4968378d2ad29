-- Internal consistency of the series columns of features_stat: a series has at least one
-- draw and at most as many as its lottery, starts no later than it ends, has a positive
-- median gap, and is main or bonus as its unique_id says.
with

stat as (
    select * from {{ ref('features_stat') }}
),

final as (
    select
        stat.loto,
        stat.unique_id,
        stat.stat_series_length,
        stat.stat_series_start_date,
        stat.stat_series_end_date,
        stat.stat_series_frequency_days,
        stat.stat_loto_draw_count_total,
        stat.stat_unique_id_category
    from stat
    where
        stat.stat_series_length < 1
        or stat.stat_series_length > stat.stat_loto_draw_count_total
        or stat.stat_series_start_date > stat.stat_series_end_date
        or (stat.stat_series_length = 1) != (stat.stat_series_start_date = stat.stat_series_end_date)
        or stat.stat_series_frequency_days <= 0
        or (stat.stat_series_length > 1) != (stat.stat_series_frequency_days is not null)
        or (stat.unique_id like 'N%') != (stat.stat_unique_id_category = 'main')
        or (stat.unique_id like 'B%') != (stat.stat_unique_id_category = 'bonus')
)

select * from final
