{#-
    features_hist's parameters, read from the project's vars (one place for the model and its
    hooks: the model's own select and the staging of macros/marts/features_hist/
    features_hist_stage.sql render the same steps with them): the windows, lags, diffs and
    percent changes of the columns, the incremental lookback, the fixed window of the outlier,
    trend and correlation columns, the lottery-level columns, the joined columns an
    incremental run compares (joined_columns), and the named slots of the per-row values
    folded into series_arrays.row_values (slot). Raises a compiler error for vars the model
    cannot build from.
    Usage: {%- set params = features_hist_params() -%} ... params.windows
-#}
{% macro features_hist_params() -%}
{%- set windows = hist_int_var('windows', [3, 7]) | list -%}
{%- set lags = hist_int_var('lags', [1, 7]) | list -%}
{%- set diffs = hist_int_var('diffs', [1]) | list -%}
{%- set pct_changes = hist_int_var('pct_changes', [1]) | list -%}
{%- set lookback = hist_int_var('incremental_lookback_rows', 160) -%}
{#- The outlier, trend, autocorrelation and carry-over columns use one window of var('stat_window') rows. -#}
{%- set fixed_window = hist_int_var('stat_window', 30) -%}
{%- set moment_windows = (windows + [fixed_window]) | unique | sort -%}
{%- set fetched_lags = (lags + diffs + pct_changes) | unique | sort -%}
{#- The lottery-level columns of int_hist__draw_domain, in the order of the mart (and of the
    online engine: generated from python_jobs/realtime/domain.py). -#}
{%- set domain_columns = hist_draw_domain_columns() -%}
{#- Every column the mart takes from a joined model rather than computing it from the series'
    own rows, with the relation that holds its current value. An incremental run compares each
    stored row's values with these: a correction of any input they come from (draws, prizes,
    the positions seed, the Python job's table) reaches every row it changed. A column joined
    into the final select must be listed here, or an incremental run would keep it stale. -#}
{%- set joined_columns = {} -%}
{%- for column in domain_columns + ['hist_y_gap_mean', 'hist_y_gap_std'] -%}
    {%- do joined_columns.update({column: 'draw_level'}) -%}
{%- endfor -%}
{%- for column in ['hist_draw_prize1_winners', 'hist_draw_prize1_payout', 'hist_draw_payout_total'] -%}
    {%- do joined_columns.update({column: 'draw_prizes'}) -%}
{%- endfor -%}
{%- do joined_columns.update({
    'hist_y_prize1_corr_w' ~ hist_int_var('stat_window', 30): 'prize_correlation',
    'hist_y_gap_expected': 'position_gap_expected',
}) -%}
{%- for column in py_hist_columns() -%}
    {%- do joined_columns.update({column: 'py_hist'}) -%}
{%- endfor -%}
{#- The per-row values folded into series_arrays.row_values, one named slot each, numbered from 1
    in this order: every read says which value it takes (row_values[i][slot.y_sum]). -#}
{%- set row_slots = [
    'y', 'y_sum', 'y_sq_sum', 'index_y_sum', 'lag_cross_sum', 'running_max', 'running_min',
    'co', 'co_sum', 'co_y_sum', 'co_var_n', 'ds_us',
] -%}
{#- Prefix sums of y^3, y^4 ... as far as a rolling statistic reads them (hist_window_max_power()). -#}
{%- set powers = range(3, hist_window_max_power() + 1) | list -%}
{%- for p in powers -%}
    {%- do row_slots.append('y_pow' ~ p ~ '_sum') -%}
{%- endfor -%}
{%- set slot = {} -%}
{%- for name in row_slots -%}
    {%- do slot.update({name: loop.index}) -%}
{%- endfor -%}
{#- An incremental run reads y as each stored row was built from the shortest lag. -#}
{%- set check_lag = lags | min -%}
{%- if windows | min < hist_smallest_window() -%}
    {{ exceptions.raise_compiler_error(
        "features_hist: every window needs at least " ~ hist_smallest_window() ~ " rows (std), got " ~ windows
    ) }}
{%- endif -%}
{%- if lags | length == 0 -%}
    {{ exceptions.raise_compiler_error("features_hist: var('lags') needs at least one lag") }}
{%- endif -%}
{%- if lookback < [windows | max, fetched_lags | max, fixed_window] | max -%}
    {{ exceptions.raise_compiler_error(
        "features_hist: incremental_lookback_rows (" ~ lookback ~ ") is shorter than the longest window or lag"
    ) }}
{%- endif -%}
{{ return({
    'windows': windows,
    'lags': lags,
    'diffs': diffs,
    'pct_changes': pct_changes,
    'lookback': lookback,
    'fixed_window': fixed_window,
    'moment_windows': moment_windows,
    'fetched_lags': fetched_lags,
    'domain_columns': domain_columns,
    'joined_columns': joined_columns,
    'row_slots': row_slots,
    'powers': powers,
    'slot': slot,
    'check_lag': check_lag,
}) }}
{%- endmacro %}
