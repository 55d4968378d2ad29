-- One row per snapshot (loto, unique_id, as_of) of each series of stg_lottery__draws: every
-- column of features_stat computed only from the series' rows with ds <= as_of (and, for the
-- lottery-wide columns, the lottery's rows with ds <= as_of). Snapshots are the last row of
-- each calendar year of the series (var('stat_snapshot_cadence'): `yearly`, or `monthly`),
-- so the latest row is always one; features_stat is the latest snapshot. The Python columns
-- come from py_features_stat_history, computed by the job per snapshot (NULL until it has
-- run). Joined to a row at ds, the latest snapshot with as_of <= ds leaks nothing from after ds.
-- A table rebuilt in full: each intermediate runs along each series once (running windows),
-- so the cost does not grow with the number of snapshots. Its primary key is the grain, added
-- after the load (primary_key_after_load).
{{
    config(
        post_hook=[
            "{{ primary_key_after_load(['loto', 'unique_id', 'as_of']) }}",
            'analyze {{ this }}',
        ],
    )
}}

with

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

py_stat_history as (
    select * from {{ ref('stg_python__features_stat_history') }}
),

lottery_draws as (
    select * from {{ ref('int_stat__lottery_draw_counts') }}
),

final as (
    select
        moments.loto,
        moments.unique_id,
        moments.as_of,
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
            py_stat_history.{{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from moments
    inner join draw_gaps
        on
            moments.loto = draw_gaps.loto
            and moments.unique_id = draw_gaps.unique_id
            and moments.as_of = draw_gaps.as_of
    inner join lottery_draws
        on
            moments.loto = lottery_draws.loto
            and moments.as_of = lottery_draws.ds
    left join positions
        on
            moments.loto = positions.loto
            and moments.unique_id = positions.unique_id
    left join prizes
        on
            moments.loto = prizes.loto
            and moments.unique_id = prizes.unique_id
            and moments.as_of = prizes.as_of
    left join py_stat_history
        on
            moments.loto = py_stat_history.loto
            and moments.unique_id = py_stat_history.unique_id
            and moments.as_of = py_stat_history.as_of
)

select * from final
