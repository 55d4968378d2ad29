"""Slow, obviously-correct references for features_futr and features_stat.

Everything here is computed independently of the dbt models and of the holiday seed: calendar
parts from pandas ``DatetimeIndex`` attributes, holidays from the ``holidays`` package, the
draw schedule by walking day after day, and the series statistics from pandas methods.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence

import holidays
import numpy as np
import pandas as pd

EPOCH = pd.Timestamp("1970-01-01")
FOURIER_PERIODS = (7, 30, 365)
FOURIER_ORDERS = (1, 2)
NEW_YEAR_BREAK = {(12, 31), (1, 1), (1, 2), (1, 3)}


def calendar_features(dates: Iterable[dt.date]) -> pd.DataFrame:
    """The calendar columns of features_futr for each date or timestamp, indexed by it.

    Notes
    -----
    Reference: pandas ``DatetimeIndex`` attributes (``.year``, ``.quarter``, ``.isocalendar()``,
    ``.days_in_month``, ``.is_quarter_start``, ``.hour``, ``.minute`` ...) and ``holidays.JP``
    queried directly. The Fourier index t is ``(ds - 1970-01-01) / 1 day``, fractional within
    a day.
    """
    index = pd.DatetimeIndex(sorted(set(pd.to_datetime(list(dates)))))
    out = pd.DataFrame(index=index)
    out["futr_ds_year"] = index.year
    out["futr_ds_quarter"] = index.quarter
    out["futr_ds_month"] = index.month
    out["futr_ds_day_of_month"] = index.day
    out["futr_ds_day_of_year"] = index.day_of_year
    out["futr_ds_week_of_year"] = index.isocalendar().week.to_numpy()
    out["futr_ds_day_of_week"] = index.day_of_week
    out["futr_ds_days_in_month"] = index.days_in_month
    out["futr_ds_is_weekend"] = index.day_of_week >= 5
    out["futr_ds_leapyear"] = index.is_leap_year
    out["futr_ds_quarter_start"] = index.is_quarter_start
    out["futr_ds_quarter_end"] = index.is_quarter_end
    out["futr_ds_month_start"] = index.is_month_start
    out["futr_ds_month_end"] = index.is_month_end
    cycles = {
        "day": ((index.day - 1).to_numpy(), index.days_in_month.to_numpy()),
        "week": (index.day_of_week.to_numpy(), 7),
        "month": ((index.month - 1).to_numpy(), 12),
        "quarter": ((index.quarter - 1).to_numpy(), 4),
        "hour": (index.hour.to_numpy(), 24),
        "minute_of_day": ((60 * index.hour + index.minute).to_numpy(), 1440),
    }
    for name, (value, period) in cycles.items():
        out[f"futr_ds_{name}_sin"] = np.sin(2 * np.pi * value / period)
        out[f"futr_ds_{name}_cos"] = np.cos(2 * np.pi * value / period)
    t = ((index - EPOCH) / pd.Timedelta(days=1)).to_numpy()
    for period in FOURIER_PERIODS:
        for order in FOURIER_ORDERS:
            out[f"futr_p{period}_k{order}_sin"] = np.sin(2 * np.pi * order * t / period)
            out[f"futr_p{period}_k{order}_cos"] = np.cos(2 * np.pi * order * t / period)
    days = [stamp.date() for stamp in index]  # holidays are per day, whatever the time
    # One year either side, so that the nearest holiday of every date is in the calendar.
    calendar = holidays.JP(years=range(index.year.min() - 1, index.year.max() + 2))
    holiday_days = sorted(calendar)
    out["futr_is_holiday"] = [day in calendar for day in days]
    since, until = [], []
    for day in days:
        before = bisect.bisect_right(holiday_days, day)
        after = bisect.bisect_left(holiday_days, day)
        since.append((day - holiday_days[before - 1]).days)
        until.append((holiday_days[after] - day).days)
    out["futr_days_since_holiday"] = since
    out["futr_days_until_holiday"] = until
    return out


def own_steps(ds: Sequence[pd.Timestamp], horizon: int, diffs: int) -> list[pd.Timestamp]:
    """The next ``horizon`` steps of a series without a schedule: last + k * step, the step
    being the median of its last ``diffs`` differences (pandas ``Series.diff().median()``)."""
    stamps = pd.Series(pd.to_datetime(list(ds))).sort_values()
    step = stamps.diff().dropna().iloc[-diffs:].median()
    if pd.isna(step):
        return []
    return [stamps.iloc[-1] + k * step for k in range(1, horizon + 1)]


def scheduled_dates(
    last_draw_date: dt.date, schedule: Sequence[tuple[dt.date, dt.date, int]], horizon: int
) -> list[pd.Timestamp]:
    """The next ``horizon`` draw dates after ``last_draw_date``, walking one day at a time, as
    midnight timestamps (the type of ``ds``).

    ``schedule`` holds ``(valid_from, valid_to, weekday)`` rows (Monday = 0). No draw on
    31 December or 1 to 3 January. Returns fewer dates only when the schedule stops within
    three years of the last draw.
    """
    found: list[pd.Timestamp] = []
    day = pd.Timestamp(last_draw_date).date()
    limit = day + dt.timedelta(days=3 * 366)
    while len(found) < horizon and day < limit:
        day += dt.timedelta(days=1)
        if (day.month, day.day) in NEW_YEAR_BREAK:
            continue
        if any(start <= day <= end and day.weekday() == weekday for start, end, weekday in schedule):
            found.append(pd.Timestamp(day))
    return found


def series_stats(draws: pd.DataFrame) -> pd.DataFrame:
    """The SQL columns of features_stat, from pandas, indexed by (loto, unique_id).

    ``draws`` has columns loto, unique_id, ds, y (the staging model).

    Notes
    -----
    Reference: pandas ``Series.mean / std(ddof=1) / min / max / skew / kurt / median``.
    """
    rows = []
    # The lottery's distinct dates, counted up to each series' last row (its point in time).
    lottery_dates = {loto: np.unique(pd.to_datetime(ds)) for loto, ds in draws.groupby("loto")["ds"]}
    for (loto, unique_id), group in draws.sort_values("ds").groupby(["loto", "unique_id"], sort=True):
        y = group["y"].astype("float64")
        ds = pd.to_datetime(group["ds"])
        mean, std = y.mean(), y.std(ddof=1)
        rows.append(
            {
                "loto": loto,
                "unique_id": unique_id,
                "stat_y_global_mean": mean,
                "stat_y_global_std": std,
                "stat_y_global_min": y.min(),
                "stat_y_global_max": y.max(),
                "stat_y_global_range": y.max() - y.min(),
                "stat_y_global_cv": std / mean if mean != 0 else np.nan,
                "stat_y_global_skewness": y.skew(),
                "stat_y_global_kurtosis": y.kurt(),
                "stat_series_length": len(y),
                "stat_series_start_date": ds.min(),
                "stat_series_end_date": ds.max(),
                "stat_series_frequency_days": (ds.diff() / pd.Timedelta(days=1)).median(),
                "stat_unique_id_category": {"N": "main", "B": "bonus"}.get(unique_id[0]),
                "stat_loto_type": loto,
                "stat_loto_draw_count_total": int((lottery_dates[loto] <= ds.max()).sum()),
            }
        )
    return pd.DataFrame(rows).set_index(["loto", "unique_id"])
