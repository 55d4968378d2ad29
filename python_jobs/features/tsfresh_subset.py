"""A curated subset of tsfresh features: ``stat_tsfresh_<feature>``.

:data:`SETTINGS` is a ``tsfresh`` ``default_fc_parameters`` dictionary (a subset of
``ComprehensiveFCParameters``): cheap, well-defined calculators that add to the other families
(counts, locations, re-occurrence, non-linearity, peaks, binned entropy, quantiles, trend).
The calculators are called directly, one series at a time, exactly as
``tsfresh.extract_features(df, default_fc_parameters=SETTINGS, ...)`` calls them (minus the
DataFrame reshaping and process pool, which cost far more than the features), except those
computed here with the same arithmetic and less overhead: ``longest_strike_above_mean`` and
``longest_strike_below_mean`` (run lengths rather than a Python loop over every value),
``benford_correlation`` for integer-valued series (first digits by integer division rather
than one string formatting per value; other series use tsfresh's function),
``linear_trend``'s slope and r-value without the p-value and standard errors scipy also
computes, and the calculators of :mod:`python_jobs.features._tsfresh_fast` (one sort, mean
and variance shared by the calculators that each recompute them, the 40 autocorrelation
lags without the other n - 40, rolled copies taken as slices). The feature names are formatted
once per settings. The tests hold every one equal to tsfresh.

Column names: tsfresh names a feature ``<kind>__<calculator>[__<param>_<value>...]`` with the
parameters sorted by name and string values in double quotes. The column is
``stat_tsfresh_`` + that name without the ``y__`` kind prefix, lower-cased, with ``"``
removed, ``-`` written ``m`` (a minus sign), ``.`` written ``_``, and any other character
outside ``[a-z0-9_]`` written ``_``. For example ``y__quantile__q_0.1`` becomes
``stat_tsfresh_quantile__q_0_1`` and ``y__linear_trend__attr_"slope"`` becomes
``stat_tsfresh_linear_trend__attr_slope``. Every name fits PostgreSQL's 63-character
identifier limit (checked at import), so there is no truncation rule; this is why
``percentage_of_reoccurring_datapoints_to_all_datapoints`` (68 characters as a column) is
not in the subset.

GPU: :mod:`python_jobs.gpu.tsfresh_subset` computes every output for a batch of series on the
device.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
from tsfresh.feature_extraction import feature_calculators
from tsfresh.utilities.string_manipulation import convert_to_output_format

from python_jobs.features import _tsfresh_fast as fast
from python_jobs.features._common import as_series, finite_or_nan, nan_dict, quiet, usable
from python_jobs.features._numba import njit
from python_jobs.features._tsfresh_fast import Shared, benford_correlation
from python_jobs.features.registry import param, register

# A ComprehensiveFCParameters subset (40 features); None means no parameters.
SETTINGS: dict[str, list[dict] | None] = {
    "abs_energy": None,
    "absolute_maximum": None,
    "absolute_sum_of_changes": None,
    "benford_correlation": None,
    "count_above_mean": None,
    "count_below_mean": None,
    "first_location_of_maximum": None,
    "first_location_of_minimum": None,
    "last_location_of_maximum": None,
    "last_location_of_minimum": None,
    "has_duplicate_max": None,
    "has_duplicate_min": None,
    "kurtosis": None,
    "skewness": None,
    "longest_strike_above_mean": None,
    "longest_strike_below_mean": None,
    "mean_abs_change": None,
    "mean_change": None,
    "mean_second_derivative_central": None,
    "percentage_of_reoccurring_values_to_all_values": None,
    "ratio_value_number_to_time_series_length": None,
    "sum_of_reoccurring_data_points": None,
    "sum_of_reoccurring_values": None,
    "variation_coefficient": None,
    "root_mean_square": None,
    "cid_ce": [{"normalize": True}],
    "c3": [{"lag": 1}, {"lag": 2}],
    "time_reversal_asymmetry_statistic": [{"lag": 1}, {"lag": 2}],
    "number_peaks": [{"n": 3}],
    "binned_entropy": [{"max_bins": 10}],
    "quantile": [{"q": 0.1}, {"q": 0.9}],
    "mean_n_absolute_max": [{"number_of_maxima": 7}],
    "autocorrelation": [{"lag": 1}],
    "agg_autocorrelation": [{"f_agg": "mean", "maxlag": 40}],
    "linear_trend": [{"attr": "slope"}, {"attr": "rvalue"}],
    "ratio_beyond_r_sigma": [{"r": 2}],
}
PREFIX = "stat_tsfresh_"
POSTGRES_MAX_IDENTIFIER = 63
# tsfresh's own kind prefix when the value column is called "y".
KIND = "y"


def column_name(tsfresh_name: str) -> str:
    """The SQL column of a tsfresh feature name (``y__...``); see the module docstring."""
    name = tsfresh_name.removeprefix(f"{KIND}__").lower().replace('"', "").replace("-", "m").replace(".", "_")
    return PREFIX + re.sub(r"[^a-z0-9_]", "_", name)


def _feature_names(settings: dict[str, list[dict] | None] = SETTINGS) -> list[str]:
    # tsfresh's naming, from its extraction loop (_do_extraction_on_chunk).
    names = []
    for calculator, params in settings.items():
        if params:
            names += [f"{KIND}__{calculator}__{convert_to_output_format(p)}" for p in params]
        else:
            names.append(f"{KIND}__{calculator}")
    return names


TSFRESH_NAMES = _feature_names()


def tsfresh_outputs(settings: dict[str, list[dict] | None] = SETTINGS) -> list[str]:
    return [column_name(name) for name in _feature_names(settings)]


def _check_names() -> None:
    columns = tsfresh_outputs()
    if len(set(columns)) != len(columns):
        raise ValueError("two tsfresh features map to the same column name")
    too_long = [col for col in columns if len(col) > POSTGRES_MAX_IDENTIFIER]
    if too_long:
        raise ValueError(f"column names longer than PostgreSQL allows: {too_long}")


_check_names()


@njit(cache=True, nogil=True)
def _longest_strike(x: np.ndarray, mean: float, above: bool) -> int:  # pragma: no cover
    # The longest run of values above (below) ``mean``.
    best = 0
    run = 0
    for k in range(x.shape[0]):
        inside = x[k] > mean if above else x[k] < mean
        run = run + 1 if inside else 0
        best = max(best, run)
    return best


def longest_strike_above_mean(x: np.ndarray, shared: Shared | None = None) -> int:
    """tsfresh's: the longest run of values above ``np.mean(x)`` (0 for an empty series)."""
    if x.size == 0:
        return 0
    mean = np.mean(x) if shared is None else shared.mean
    return int(_longest_strike(np.ascontiguousarray(x, dtype=np.float64), mean, True))


def longest_strike_below_mean(x: np.ndarray, shared: Shared | None = None) -> int:
    """tsfresh's: the longest run of values below ``np.mean(x)`` (0 for an empty series)."""
    if x.size == 0:
        return 0
    mean = np.mean(x) if shared is None else shared.mean
    return int(_longest_strike(np.ascontiguousarray(x, dtype=np.float64), mean, False))


def linear_trend(x: np.ndarray, param: list[dict]) -> list[tuple[str, float]]:
    """tsfresh's ``linear_trend`` for ``slope`` and ``rvalue``: scipy ``linregress``' own formulas.

    tsfresh calls ``scipy.stats.linregress(range(len(x)), x)``, which also computes a p-value
    and standard errors (a Student t distribution per call) that these two attributes do not use.
    """
    ssxm, ssxym, _, ssym = fast.covariance(np.arange(len(x), dtype=np.float64), x, 0).flat
    if ssxm == 0.0 or ssym == 0.0:
        r = math.nan if ssxym == 0 else 0.0
    else:
        r = float(np.clip(ssxym / np.sqrt(ssxm * ssym), -1.0, 1.0))
    attrs = {"slope": ssxym / ssxm, "rvalue": r}
    return [(f'attr_"{config["attr"]}"', attrs[config["attr"]]) for config in param]


# Calculators computed here rather than by tsfresh (module docstring); tests hold them equal.
_FAST_COMBINERS = {"linear_trend": linear_trend, "agg_autocorrelation": fast.agg_autocorrelation}
_FAST = {
    "longest_strike_above_mean": longest_strike_above_mean,
    "longest_strike_below_mean": longest_strike_below_mean,
    "benford_correlation": benford_correlation,
}
# Those that reuse the sorted series, its distinct values, mean and variance (fast.Shared).
_FAST_SHARED = {
    "longest_strike_above_mean": longest_strike_above_mean,
    "longest_strike_below_mean": longest_strike_below_mean,
    "count_above_mean": fast.count_above_mean,
    "has_duplicate_max": fast.has_duplicate_max,
    "has_duplicate_min": fast.has_duplicate_min,
    "absolute_maximum": fast.absolute_maximum,
    "mean_abs_change": fast.mean_abs_change,
    "absolute_sum_of_changes": fast.absolute_sum_of_changes,
    "count_below_mean": fast.count_below_mean,
    "variation_coefficient": fast.variation_coefficient,
    "ratio_beyond_r_sigma": fast.ratio_beyond_r_sigma,
    "cid_ce": fast.cid_ce,
    "autocorrelation": fast.autocorrelation,
    "binned_entropy": fast.binned_entropy,
    "sum_of_reoccurring_values": fast.sum_of_reoccurring_values,
    "sum_of_reoccurring_data_points": fast.sum_of_reoccurring_data_points,
    "percentage_of_reoccurring_values_to_all_values": fast.percentage_of_reoccurring_values_to_all_values,
    "ratio_value_number_to_time_series_length": fast.ratio_value_number_to_time_series_length,
    "quantile": fast.quantile,
}
_COMBINERS_WITH_SHARED = {"agg_autocorrelation"}
# Simple calculators with tsfresh's rolled copies taken as slices (same elements, same order).
_FAST_SIMPLE = {
    "c3": fast.c3,
    "time_reversal_asymmetry_statistic": fast.time_reversal_asymmetry_statistic,
    "number_peaks": fast.number_peaks,
}


_PLANS: dict[str, tuple] = {}


def _settings_plan(settings: dict[str, list[dict] | None]) -> tuple[tuple[str, ...], tuple[str, ...], dict]:
    """The tsfresh names, the columns, and per calculator its ``(params, tsfresh name)`` pairs.

    Kept per settings (by their repr), so a call formats no names: tsfresh's name formatting
    costs more than most calculators.
    """
    text = repr(settings)
    plan = _PLANS.get(text)
    if plan is None:
        tsfresh_names = tuple(_feature_names(settings))
        keys = {}
        for calculator, params in settings.items():
            if params:
                keys[calculator] = [
                    (p, f"{KIND}__{calculator}__{convert_to_output_format(p)}") for p in params
                ]
            else:
                keys[calculator] = [({}, f"{KIND}__{calculator}")]
        plan = (tsfresh_names, tuple(column_name(name) for name in tsfresh_names), keys)
        if len(_PLANS) >= 16:
            _PLANS.clear()
        _PLANS[text] = plan
    return plan


def _calculate(
    arr: np.ndarray, settings: dict[str, list[dict] | None], keys: dict
) -> Iterator[tuple[str, float]]:
    series = None
    shared = Shared(arr)
    for calculator, params in settings.items():
        if calculator in _FAST_SHARED:
            func = _FAST_SHARED[calculator]
            for p, key in keys[calculator]:
                yield key, _safe_call(func, arr, {**p, "shared": shared})
            continue
        if calculator in _FAST:
            yield keys[calculator][0][1], _safe_call(_FAST[calculator], arr, {})
            continue
        func = (
            _FAST_COMBINERS.get(calculator)
            or _FAST_SIMPLE.get(calculator)
            or getattr(feature_calculators, calculator)
        )
        if getattr(func, "input", None) == "pd.Series":
            # As tsfresh hands these calculators the column itself (default RangeIndex here).
            series = pd.Series(arr) if series is None else series
            x = series
        else:
            x = arr
        if calculator in _FAST_COMBINERS or getattr(func, "fctype", None) == "combiner":
            try:
                extra = {"shared": shared} if calculator in _COMBINERS_WITH_SHARED else {}
                pairs = list(func(x, param=params, **extra))
            except (ArithmeticError, ValueError, IndexError, np.linalg.LinAlgError):
                pairs = [(convert_to_output_format(p), math.nan) for p in params]
            for key, value in pairs:
                yield f"{KIND}__{calculator}__{key}", value
        else:
            for p, key in keys[calculator]:
                yield key, _safe_call(func, x, p)


def _safe_call(func, x, params: dict) -> float:
    try:
        return func(x, **params)
    except (ArithmeticError, ValueError, IndexError, np.linalg.LinAlgError):
        return math.nan


def tsfresh_subset(y, settings: dict[str, list[dict] | None] | None = None) -> dict[str, float]:
    """The :data:`SETTINGS` features of ``y``, as tsfresh computes them.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.
    settings : dict, optional
        A ``default_fc_parameters`` dictionary; default the family's (:data:`SETTINGS`).

    Returns
    -------
    dict of str to float
        One ``stat_tsfresh_*`` column per feature (names in the module docstring); booleans
        as 0.0 / 1.0. All NaN for an empty series or one holding a non-finite value; a
        calculator that raises on a short or constant series gives NaN, otherwise tsfresh's
        value is kept (tsfresh defines most of these for constant series, e.g. counts).

    Notes
    -----
    Reference: ``tsfresh.extract_features(df, default_fc_parameters=SETTINGS,
    column_id=..., column_sort=..., n_jobs=0)`` with the value column named ``y``.
    M. Christ et al., "Time Series FeatuRe Extraction on basis of Scalable Hypothesis tests",
    Neurocomputing 307 (2018), DOI 10.1016/j.neucom.2018.03.067.
    """
    arr = as_series(y)
    settings = param("tsfresh_subset", "settings", settings)
    tsfresh_names, names, keys = _settings_plan(settings)
    if not usable(arr, 1):
        return nan_dict(list(names))
    with quiet():
        values = dict(_calculate(arr, settings, keys))
    return {
        column: finite_or_nan(values.get(name)) for name, column in zip(tsfresh_names, names, strict=True)
    }


@register(
    "tsfresh_subset",
    kind="stat",
    outputs=lambda params: tsfresh_outputs(params["settings"]),
    params={"settings": SETTINGS},
    libraries=("tsfresh",),
    cost="medium",
    gpu="python_jobs.gpu.tsfresh_subset:tsfresh_subset_batch",
    reference="tsfresh.extract_features with tsfresh_subset.SETTINGS",
)
def tsfresh_subset_family(y: np.ndarray, *, settings: dict[str, list[dict] | None]) -> dict[str, float]:
    return tsfresh_subset(y, settings)
