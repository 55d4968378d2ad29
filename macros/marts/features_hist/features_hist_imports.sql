{#-
    features_hist's inputs, one CTE each, as the model's select and the statements of its
    staging (features_hist_stage.sql) read them: draws, draw_level, draw_prizes,
    prize_correlation, position_gap_expected, exact_draws and py_hist.
    Usage: with {{ features_hist_imports() }}, ...
-#}
{% macro features_hist_imports() -%}
draws as (
    select * from {{ ref('stg_lottery__draws') }}
),

draw_level as (
    -- One row per (loto, ds, y) of a lottery: its lottery-level counts and gap statistics.
    select * from {{ ref('int_hist__draw_level') }}
),

draw_prizes as (
    select * from {{ ref('int_hist__draw_prizes') }}
),

prize_correlation as (
    select * from {{ ref('int_hist__prize_correlation') }}
),

position_gap_expected as (
    select * from {{ ref('int_hist__position_gap_expected') }}
),

exact_draws as not materialized (
    -- The draws read a second time, by exact_series and exact_rows: only the rows of series
    -- that need exact sums go on past exact_series (a lottery's draws never do).
    select * from {{ ref('stg_lottery__draws') }}
),

py_hist as not materialized (
    -- Read where it is joined (twice in an incremental run) rather than copied once.
    select * from {{ ref('stg_python__features_hist') }}
)
{%- endmacro %}
