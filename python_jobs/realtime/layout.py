"""The online feature vector: which columns, in which order, from the feature definitions.

The names are those of ``features_hist`` (``models/marts/features_hist.sql``), generated from
the same dbt vars (``python_jobs.definitions``), so the online and offline columns cannot
drift apart; the market indicators follow (:mod:`python_jobs.realtime.indicators`).

The per-window statistics are those of :data:`python_jobs.features.rolling_spec.STATISTICS`
with a kernel slot, in its order, each over its own windows. The single window of the outlier,
trend and autocorrelation columns is the dbt var ``stat_window``
(:attr:`~python_jobs.definitions.FeatureDefinitions.stat_window`), as in the mart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from python_jobs import definitions
from python_jobs.features import rolling_spec
from python_jobs.realtime.indicators import INDICATOR_NAMES


@dataclass(frozen=True)
class FeatureLayout:
    """Column order of the engine's output vector for one set of feature definitions.

    Attributes
    ----------
    defs : FeatureDefinitions
        Lags, windows, diffs and pct changes (dbt vars).
    """

    defs: definitions.FeatureDefinitions

    @cached_property
    def boolean_columns(self) -> tuple[str, ...]:
        """Columns whose values are booleans in the mart (0/1/NaN in the kernel's float output)."""
        w = self.defs.stat_window
        return (f"hist_y_is_outlier_z_w{w}", f"hist_y_is_outlier_iqr_w{w}")

    @cached_property
    def fixed_columns(self) -> tuple[str, ...]:
        """The columns over ``stat_window`` rows and the expanding drawdown/drawup, in kernel order."""
        w = self.defs.stat_window
        return (
            *self.boolean_columns,
            "hist_y_drawdown",
            "hist_y_drawup",
            f"hist_y_trend_slope_w{w}",
            f"hist_y_roll_autocorr1_w{w}",
        )

    @cached_property
    def state_windows(self) -> tuple[int, ...]:
        """Windows the engine keeps sorted: every statistic's windows and ``stat_window``."""
        windows = {w for stat in rolling_spec.online() for w in stat.windows_of(self.defs)}
        return tuple(sorted({*windows, self.defs.stat_window}))

    @cached_property
    def window_names(self) -> tuple[tuple[rolling_spec.RollingStatistic, int, str], ...]:
        """(statistic, window, column) of every per-window column, in output order."""
        return tuple(
            (stat, w, stat.column(w)) for stat in rolling_spec.online() for w in stat.windows_of(self.defs)
        )

    @cached_property
    def history(self) -> int:
        """Values kept per series: enough for every lag, window and indicator."""
        longest = max(*self.state_windows, *self.defs.lags, *self.defs.diffs, *self.defs.pct_changes, 27)
        return longest + 1

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Every output column: lags, per-window blocks, diffs, pct changes, fixed, indicators."""
        out = [f"hist_y_lag{k}" for k in self.defs.lags]
        out.extend(name for _, _, name in self.window_names)
        out.extend(f"hist_y_diff{k}" for k in self.defs.diffs)
        out.extend(f"hist_y_pct_change{k}" for k in self.defs.pct_changes)
        out.extend(self.fixed_columns)
        out.extend(INDICATOR_NAMES)
        return tuple(out)

    @cached_property
    def hist_names(self) -> tuple[str, ...]:
        """The columns shared with ``features_hist`` (all but the market indicators)."""
        return tuple(name for name in self.names if name.startswith("hist_"))

    @cached_property
    def kernel_arrays(self) -> dict[str, object]:
        """What the kernel reads besides the state: lags, state windows, output columns, limits.

        ``window_columns[k, a]`` is the output column of the statistic in kernel slot ``k``
        over state window ``a``, or -1 where it has none; ``slots`` names the kernel slots
        (:data:`python_jobs.features.rolling_spec.KernelSlots`).
        """
        columns = np.full((len(rolling_spec.online()), len(self.state_windows)), -1, dtype=np.int64)
        first = len(self.defs.lags)
        for offset, (stat, w, _) in enumerate(self.window_names):
            columns[stat.kernel_slot, self.state_windows.index(w)] = first + offset
        return {
            "lags": np.asarray(self.defs.lags, dtype=np.int64),
            "diffs": np.asarray(self.defs.diffs, dtype=np.int64),
            "pcts": np.asarray(self.defs.pct_changes, dtype=np.int64),
            "windows": np.asarray(self.state_windows, dtype=np.int64),
            "window_columns": columns,
            "fixed_index": np.int64(self.state_windows.index(self.defs.stat_window)),
            "slots": rolling_spec.kernel_slots(),
            "outlier_limits": np.asarray(
                [self.defs.outlier_z_threshold, self.defs.outlier_iqr_multiplier], dtype=np.float64
            ),
        }

    @cached_property
    def version(self) -> str:
        """Short hash of the definitions and column names: part of every Redis key."""
        text = repr((sorted(self.defs.as_vars().items()), self.names))
        return hashlib.sha1(text.encode()).hexdigest()[:8]


def layout(overrides=None) -> FeatureLayout:
    """The layout of the current definitions (``dbt_project.yml`` vars, then ``overrides``)."""
    return FeatureLayout(definitions.load(overrides))
