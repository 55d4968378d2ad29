-- One row per series (loto, unique_id) of stg_lottery__draws: its latest snapshot in
-- features_stat_history, every column, so the statistics cover the whole series (the
-- lottery-wide ones the lottery's rows up to the series' latest row) and a consumer of this
-- table sees exactly the snapshot a point-in-time join would give at the series' latest row.
-- A table: every statistic covers the whole series, so each new draw changes every row.
-- Its primary key is the grain, added after the load (primary_key_after_load).
{{ config(post_hook=["{{ primary_key_after_load(['loto', 'unique_id']) }}"]) }}

with

history as (
    select * from {{ ref('features_stat_history') }}
),

latest as (
    select
        history.loto,
        history.unique_id,
        max(history.as_of) as as_of
    from history
    group by
        history.loto,
        history.unique_id
),

final as (
    select
        history.loto,
        history.unique_id,
        history.stat_y_global_mean,
        history.stat_y_global_std,
        history.stat_y_global_min,
        history.stat_y_global_max,
        history.stat_y_global_range,
        history.stat_y_global_cv,
        history.stat_y_global_skewness,
        history.stat_y_global_kurtosis,
        history.stat_series_length,
        history.stat_series_start_date,
        history.stat_series_end_date,
        history.stat_series_frequency_days,
        history.stat_unique_id_category,
        history.stat_loto_type,
        history.stat_loto_number_range_min,
        history.stat_loto_number_range_max,
        history.stat_loto_draw_count_total,
        history.stat_prize1_hit_share,
        history.stat_prize1_payout_mean,
        history.stat_prize1_payout_median,
        history.stat_y_prize1_corr,
        {%- for column in py_stat_columns() %}
            history.{{ column }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from history
    inner join latest
        on
            history.loto = latest.loto
            and history.unique_id = latest.unique_id
            and history.as_of = latest.as_of
)

select * from final
