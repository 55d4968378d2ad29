{#-
    features_hist's two halves, as CTEs, with its parameters (features_hist_params()).

    features_hist_series_draws: the rows to compute (series_draws: every draw in a full build;
    in an incremental run the out-of-date rows and their lookback, features_hist_changed_draws).
    Reads: the CTEs of features_hist_imports() (and {{ this }} in an incremental run).

    features_hist_series_fold: series_draws, then the two window passes in row space
    (series_running, series_prefix) and the fold into one row per series (series_arrays).
    The staged build (features_hist_stage.sql) runs the passes and the fold per series instead.

    features_hist_row_moment_steps: each series on its own, from its arrays: the doubling
    steps of the rolling extremes (series_blocks<size>) and the expected gap (series_level),
    then back to one row per draw for the rows the run writes: row_windows (every lag and
    window by array subscript), the exact sums of a series that needs them (exact_series,
    exact_rows, exact_sums, exact_moments) and row_moments (centred sums n S2 - S1^2, exact
    for whole numbers below 2^53; a series that needs exact sums takes those of
    exact_moments; only the ratios round).
    Reads: series_arrays, position_gap_expected and exact_draws.

    Usage: with {{ features_hist_imports() }}, {{ features_hist_series_fold(params) }},
           {{ features_hist_row_moment_steps(params) }} select ... from row_moments
-#}
{% macro features_hist_series_draws(params) -%}
    {% if is_incremental() %}

        {# Which stored rows are out of date: stored_rows, row_changes, series_changes,
            flagged_draws, positioned_draws, then series_draws, the rows to recompute and their
            lookback. #}
        {{ features_hist_changed_draws(params.joined_columns, params.check_lag, params.lookback) }}

    {% else %}

        series_draws as (
            select
                draws.loto,
                draws.unique_id,
                draws.ds,
                draws.y::double precision as y,
                draws.co,
                true as is_emitted,
                null::double precision as earlier_y_max,
                null::double precision as earlier_y_min
            from draws
        )

    {% endif %}
{%- endmacro %}


{% macro features_hist_series_fold(params) -%}
    {{ features_hist_series_draws(params) }},

    {{ features_hist_passes_and_fold(params) }}
{%- endmacro %}


{% macro features_hist_passes_and_fold(params) -%}
    {#- From series_draws: the two window passes, then series_arrays. -#}
    {{ features_hist_row_passes(params.fixed_window, params.powers) }},

    {{ features_hist_series_arrays(params.row_slots) }}
{%- endmacro %}


{% macro features_hist_row_moment_steps(params) -%}
    {{ features_hist_series_blocks(params.windows) }},

    row_windows as (
        {{ features_hist_row_windows(
            params.slot, params.windows, params.moment_windows, params.fetched_lags, params.powers, params.fixed_window
        ) }}
    ),

    {{ features_hist_exact_moments(params.windows, params.moment_windows, params.powers, params.fixed_window) }},

    row_moments as (
        {{ features_hist_row_moments(params.windows, params.moment_windows, params.powers, params.fixed_window) }}
    )
{%- endmacro %}
