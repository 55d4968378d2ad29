-- One row per series (loto, unique_id) of stg_lottery__draws: whole-series statistics in SQL,
-- the lottery's facts from the seeds, and the columns the Python feature job writes to
-- py_features_stat (NULL until that job has run).
-- A table: every statistic covers the whole series, so each new draw changes every row.
with

draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

positions as (
    select * from {{ ref('loto_positions') }}
),

moments as (
    select * from {{ ref('int_stat__moments_aggregated') }}
),

draw_gaps as (
    select * from {{ ref('int_stat__draw_gaps_aggregated') }}
),

prizes as (
    select * from {{ ref('int_stat__prizes_aggregated') }}
),

py_stat as (
    select * from {{ ref('stg_python__features_stat') }}
),

lottery_draws as (
    select
        draws.loto,
        count(distinct draws.ds)::integer as draw_count_total
    from draws
    group by draws.loto
),

final as (
    select
        moments.loto,
        moments.unique_id,
        moments.y_mean as stat_y_global_mean,
        moments.y_std as stat_y_global_std,
        moments.y_min as stat_y_global_min,
        moments.y_max as stat_y_global_max,
        moments.y_max - moments.y_min as stat_y_global_range,
        moments.y_std / nullif(moments.y_mean, 0) as stat_y_global_cv,
        moments.y_skewness as stat_y_global_skewness,
        moments.y_kurtosis as stat_y_global_kurtosis,
        draw_gaps.series_length as stat_series_length,
        draw_gaps.series_start_date as stat_series_start_date,
        draw_gaps.series_end_date as stat_series_end_date,
        draw_gaps.series_frequency_days as stat_series_frequency_days,
        case
            when moments.unique_id ~ '^N[0-9]+$' then 'main'
            when moments.unique_id ~ '^B[0-9]+$' then 'bonus'
        end as stat_unique_id_category,
        moments.loto as stat_loto_type,
        positions.range_min as stat_loto_number_range_min,
        positions.range_max as stat_loto_number_range_max,
        lottery_draws.draw_count_total as stat_loto_draw_count_total,
        prizes.stat_prize1_hit_share,
        prizes.stat_prize1_payout_mean,
        prizes.stat_prize1_payout_median,
        prizes.stat_y_prize1_corr,
        {%- for column in py_stat_columns() %}
            py_stat.{{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from moments
    inner join draw_gaps
        on
            moments.loto = draw_gaps.loto
            and moments.unique_id = draw_gaps.unique_id
    inner join lottery_draws
        on moments.loto = lottery_draws.loto
    left join positions
        on
            moments.loto = positions.loto
            and moments.unique_id = positions.unique_id
    left join prizes
        on
            moments.loto = prizes.loto
            and moments.unique_id = prizes.unique_id
    left join py_stat
        on
            moments.loto = py_stat.loto
            and moments.unique_id = py_stat.unique_id
)

select * from final
