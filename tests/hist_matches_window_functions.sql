-- features_hist against PostgreSQL's own window functions, written the obvious way (a frame
-- of the last 7 rows): lag 1, the 7-row mean and max, the 3-row min. Any row here differs.
-- Those columns exist only while the vars hold window 3 and 7 and lag 1: off otherwise.
{%- set windows = hist_int_var('windows', [3, 7]) %}
{{ config(enabled=(3 in windows and 7 in windows and 1 in hist_int_var('lags', [1]))) }}

with

draws as (
    select
        loto,
        unique_id,
        ds,
        y::double precision as y
    from {{ ref('stg_lottery__draws') }}
),

features as (
    select * from {{ ref('features_hist') }}
),

expected as (
    select
        draws.loto,
        draws.unique_id,
        draws.ds,
        lag(draws.y) over last_7 as y_lag1,
        count(*) over last_7 as rows_7,
        avg(draws.y) over last_7 as mean_7,
        max(draws.y) over last_7 as max_7,
        -- The last 3 rows are the current one and its two lags (least() skips the NULL lag
        -- of a series' first rows): one window pass over the rows instead of three.
        least(count(*) over last_7, 3) as rows_3,
        least(draws.y, lag(draws.y) over last_7, lag(draws.y, 2) over last_7) as min_3
    from draws
    window
        last_7 as (
            partition by draws.loto, draws.unique_id
            order by draws.ds
            rows between 6 preceding and current row
        )
),

final as (
    select
        expected.*,
        features.hist_y_lag1,
        features.hist_y_roll_mean_w7,
        features.hist_y_roll_max_w7,
        features.hist_y_roll_min_w3
    from expected
    left join features
        on
            expected.loto = features.loto
            and expected.unique_id = features.unique_id
            and expected.ds = features.ds
    where
        features.loto is null
        or features.hist_y_lag1 is distinct from expected.y_lag1
        or features.hist_y_roll_max_w7 is distinct from (case when expected.rows_7 = 7 then expected.max_7 end)
        or features.hist_y_roll_min_w3 is distinct from (case when expected.rows_3 = 3 then expected.min_3 end)
        or (features.hist_y_roll_mean_w7 is null) <> (expected.rows_7 < 7)
        or abs(features.hist_y_roll_mean_w7 - expected.mean_7) > 1e-9 * greatest(abs(expected.mean_7), 1)
)

select * from final
