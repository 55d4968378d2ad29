"""Feature definitions, read from the one place they live: the ``vars`` of ``dbt_project.yml``.

The SQL models read these vars through ``var('windows')`` and friends; the Python job, the
online engine and the docs read them here, so a window changed in ``dbt_project.yml`` (or passed
to a run as ``--vars``, exactly as to dbt) changes every consumer with no second edit.

>>> load().windows == tuple(project_vars()["windows"])
True
>>> load({"windows": [5, 10]}).windows
(5, 10)
>>> load({"windows": [1, 5]})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
python_jobs.definitions.DefinitionError: dbt var 'windows' must hold windows of at least 2 rows ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_FILE = Path(__file__).resolve().parent.parent / "dbt_project.yml"

#: Environment variable holding ``--vars`` (YAML or JSON, as dbt takes them) for every command
#: of one run: the pipeline sets it so the job and dbt see the same overrides.
VARS_ENV = "LOTO_DBT_VARS"


#: The smallest rolling window: every window has a standard deviation (ddof 1), which needs two
#: rows. ``features_hist.sql`` refuses a smaller one with the same rule (``hist_smallest_window()``).
SMALLEST_WINDOW = 2


class DefinitionError(ValueError):
    """A feature definition is missing or has a value the features cannot use."""


@dataclass(frozen=True)
class FeatureDefinitions:
    """The feature definitions shared by SQL, the Python job and the online engine.

    Attributes
    ----------
    lags : tuple of int
        ``hist_y_lag{k}``: the value ``k`` rows earlier in the series.
    windows : tuple of int
        Rolling windows in rows: ``hist_y_roll_{stat}_w{w}`` and the columns derived from them.
    diffs : tuple of int
        ``hist_y_diff{k}``: ``y - lag k``.
    pct_changes : tuple of int
        ``hist_y_pct_change{k}``: ``(y - lag k) / lag k``.
    freq_windows : tuple of int
        ``hist_y_freq_w{n}``: appearances of ``y`` among the previous ``n`` draws' main numbers.
    mp_window : int
        Subsequence length ``m`` of the matrix-profile columns.
    season_length : int
        Season length of the STL/tsfeatures family (``freq`` of ``tsfeatures``).
    futr_horizon : int
        Future scheduled draws (or steps) per series in ``features_futr``.
    futr_step_diffs : int
        A series without a lottery schedule steps into the future by the median of its last
        this many differences between consecutive ``ds``.
    fourier_periods, fourier_orders : tuple of int
        ``futr_p{P}_k{K}_sin/cos`` for every period ``P`` (days) and order ``K``.
    stat_window : int
        Rows of the single-window statistics of ``features_hist``: the outlier flags
        ``hist_y_is_outlier_z_w{n}`` / ``_iqr_w{n}``, ``hist_y_trend_slope_w{n}``,
        ``hist_y_roll_autocorr1_w{n}``, ``hist_y_co_corr_w{n}`` and ``hist_y_prize1_corr_w{n}``.
    incremental_lookback_rows : int
        Rows per series re-read before the newest stored draw in an incremental build.
    outlier_z_threshold : float
        ``hist_y_is_outlier_z_w{n}``: ``|z-score| >`` this.
    outlier_iqr_multiplier : float
        ``hist_y_is_outlier_iqr_w{n}``: beyond the quartiles by more than this times the IQR.
    """

    lags: tuple[int, ...]
    windows: tuple[int, ...]
    diffs: tuple[int, ...]
    pct_changes: tuple[int, ...]
    freq_windows: tuple[int, ...]
    mp_window: int
    season_length: int
    futr_horizon: int
    futr_step_diffs: int
    fourier_periods: tuple[int, ...]
    fourier_orders: tuple[int, ...]
    stat_window: int
    incremental_lookback_rows: int
    outlier_z_threshold: float
    outlier_iqr_multiplier: float

    @property
    def quantile_windows(self) -> tuple[int, ...]:
        """Windows of the rolling median and quartiles: ``windows`` and ``stat_window``, sorted.

        The IQR outlier flag reads the quartiles over ``stat_window`` rows, so the Python job
        writes them even when ``stat_window`` is not one of ``windows``.
        """
        return tuple(sorted({*self.windows, self.stat_window}))

    def as_vars(self) -> dict[str, Any]:
        """The definitions as dbt vars (lists, not tuples), for ``dbt --vars``."""
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()
        }


_LISTS = ("lags", "windows", "diffs", "pct_changes", "freq_windows", "fourier_periods", "fourier_orders")
_SCALARS = (
    "mp_window",
    "season_length",
    "futr_horizon",
    "futr_step_diffs",
    "stat_window",
    "incremental_lookback_rows",
)
_NUMBERS = ("outlier_z_threshold", "outlier_iqr_multiplier")

#: Definitions derived from the vars, with the Jinja expression that computes each one in dbt.
DERIVED_JINJA = {"quantile_windows": "((var('windows') | list) + [var('stat_window')]) | unique | sort"}


def parse_vars(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Parse ``--vars`` as dbt does: a YAML (or JSON) mapping; ``None`` or empty gives ``{}``."""
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    if not text.strip():
        return {}
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"--vars is not a YAML mapping: {exc}") from None
    if not isinstance(parsed, dict):
        raise DefinitionError(f"--vars must be a mapping such as '{{windows: [5, 10]}}', got {text!r}")
    return parsed


@lru_cache(maxsize=1)
def _project_vars(path: str, mtime: float) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        project = yaml.safe_load(handle)
    return dict(project.get("vars") or {})


def project_definitions() -> FeatureDefinitions:
    """The definitions of ``dbt_project.yml`` alone: no ``$LOTO_DBT_VARS``, no overrides."""
    saved = os.environ.pop(VARS_ENV, None)
    try:
        return load()
    finally:
        if saved is not None:
            os.environ[VARS_ENV] = saved


def project_vars() -> dict[str, Any]:
    """The ``vars`` block of ``dbt_project.yml`` as written (no overrides)."""
    return dict(_project_vars(str(PROJECT_FILE), PROJECT_FILE.stat().st_mtime))


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DefinitionError(f"dbt var {name!r} must be a positive integer, got {value!r}")
    return value


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise DefinitionError(f"dbt var {name!r} must be a positive number, got {value!r}")
    return float(value)


def _int_list(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise DefinitionError(
            f"dbt var {name!r} must be a non-empty list of positive integers, got {value!r}"
        )
    items = tuple(_positive_int(name, item) for item in value)
    if len(set(items)) != len(items):
        raise DefinitionError(f"dbt var {name!r} repeats a value: {list(items)}")
    return items


def load(overrides: str | Mapping[str, Any] | None = None) -> FeatureDefinitions:
    """The feature definitions: ``dbt_project.yml`` vars, then ``$LOTO_DBT_VARS``, then ``overrides``.

    Parameters
    ----------
    overrides : str or mapping, optional
        What a run passes as ``--vars`` (YAML text or a mapping); it wins over the file.

    Raises
    ------
    DefinitionError
        A var is missing, not a positive integer (list) or number, or a window is too short.
    """
    merged = project_vars()
    merged.update(parse_vars(os.environ.get(VARS_ENV)))
    merged.update(parse_vars(overrides))
    missing = [name for name in (*_LISTS, *_SCALARS, *_NUMBERS) if name not in merged]
    if missing:
        raise DefinitionError(f"dbt_project.yml has no var(s) {missing}")
    values: dict[str, Any] = {name: _int_list(name, merged[name]) for name in _LISTS}
    values.update({name: _positive_int(name, merged[name]) for name in _SCALARS})
    values.update({name: _positive_number(name, merged[name]) for name in _NUMBERS})
    defs = FeatureDefinitions(**values)
    if min(defs.windows) < SMALLEST_WINDOW:
        raise DefinitionError(
            f"dbt var 'windows' must hold windows of at least {SMALLEST_WINDOW} rows (a standard "
            f"deviation), got {list(defs.windows)}"
        )
    if defs.stat_window < SMALLEST_WINDOW:
        raise DefinitionError(
            f"dbt var 'stat_window' must be at least {SMALLEST_WINDOW} (a standard deviation), "
            f"got {defs.stat_window}"
        )
    needed = max(*defs.windows, defs.stat_window) + max(defs.lags)
    if defs.incremental_lookback_rows < needed:
        raise DefinitionError(
            f"dbt var 'incremental_lookback_rows' is {defs.incremental_lookback_rows}; the longest "
            f"window (stat_window included) plus the longest lag needs at least {needed}"
        )
    return defs


#: dbt var that switches the marts' contracts off (``false``) whatever the definitions.
CONTRACT_VAR = "enforce_mart_contracts"

#: dbt var of the snapshot times of ``features_stat_history`` (and the job's per-snapshot table).
SNAPSHOT_CADENCE_VAR = "stat_snapshot_cadence"
#: Each cadence's calendar period, a PostgreSQL ``date_trunc`` field, as the dbt macro
#: ``stat_snapshot_period_start`` maps it: a snapshot is the last row of each such period.
SNAPSHOT_PERIODS = {"yearly": "year", "monthly": "month"}


def snapshot_period(overrides: str | Mapping[str, Any] | None = None) -> str:
    """The ``date_trunc`` field of the snapshot cadence in force (``year`` or ``month``).

    The var ``stat_snapshot_cadence`` of ``dbt_project.yml``, then ``$LOTO_DBT_VARS``, then
    ``overrides``; it is not a feature definition (no family and no online column depends
    on it), so it is read here rather than held in :class:`FeatureDefinitions`.

    Raises
    ------
    DefinitionError
        The cadence is not one of :data:`SNAPSHOT_PERIODS`.

    >>> snapshot_period({"stat_snapshot_cadence": "monthly"})
    'month'
    """
    merged = project_vars()
    merged.update(parse_vars(os.environ.get(VARS_ENV)))
    merged.update(parse_vars(overrides))
    cadence = merged.get(SNAPSHOT_CADENCE_VAR, "yearly")
    if not isinstance(cadence, str) or cadence not in SNAPSHOT_PERIODS:
        raise DefinitionError(
            f"dbt var {SNAPSHOT_CADENCE_VAR!r} must be one of {sorted(SNAPSHOT_PERIODS)}, got {cadence!r}"
        )
    return SNAPSHOT_PERIODS[cadence]


def vars_json(overrides: str | Mapping[str, Any] | None = None) -> str:
    """The effective overrides (``$LOTO_DBT_VARS`` and ``overrides``) as JSON for ``dbt --vars``."""
    merged = parse_vars(os.environ.get(VARS_ENV))
    merged.update(parse_vars(overrides))
    return json.dumps(merged, sort_keys=True)


def differ_from_project(overrides: str | Mapping[str, Any] | None = None) -> bool:
    """Whether the effective definitions (``$LOTO_DBT_VARS``, ``overrides``) differ from the project's."""
    return load(overrides) != project_definitions()
