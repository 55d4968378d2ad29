-- Facts the lottery counts of features_hist must satisfy on any data: a main number's streak
-- is at least 1 (it appears in its own draw); a streak longer than 1 means it also appeared
-- in the previous draw (gap 1); frequencies grow with the window and never exceed it times
-- the number of main positions; a value never seen before has no gap and frequency 0.
with

features as (
    select * from {{ ref('features_hist') }}
),

main_positions as (
    select
        loto,
        count(distinct unique_id) filter (where {{ hist_is_main_number('unique_id') }}) as n_main
    from {{ ref('stg_lottery__draws') }}
    group by loto
),

final as (
    select
        features.loto,
        features.unique_id,
        features.ds,
        features.hist_y_gap,
        features.hist_y_streak
    from features
    inner join main_positions
        on features.loto = main_positions.loto
    where
        ({{ hist_is_main_number('features.unique_id') }} and features.hist_y_streak < 1)
        or (features.hist_y_streak > 1 and features.hist_y_gap is distinct from 1)
        {%- set windows = var('freq_windows') | sort %}
        {%- for n in windows %}
            or features.hist_y_freq_w{{ n }} > {{ n }} * main_positions.n_main
            {%- if not loop.last %}
                or features.hist_y_freq_w{{ n }} > features.hist_y_freq_w{{ windows[loop.index] }}
            {%- endif %}
        {%- endfor %}
        or (features.hist_y_gap is null and features.hist_y_freq_w{{ windows | last }} > 0)
)

select * from final
