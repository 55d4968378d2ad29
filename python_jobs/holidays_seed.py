"""The Japanese national holiday calendar as a dbt seed (``seeds/jp_holidays.csv``).

``loto-features holidays [--start-year Y] [--end-year Y]`` regenerates the file; the
``features_futr`` mart reads it through ``int_calendar__dates_enriched``. Years outside the
seed's range have no holiday information there (the mart gives NULL, not ``false``), so widen
the range before adding draws outside it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from python_jobs import config

SEED_PATH = config.SEEDS_DIR / "jp_holidays.csv"
SEED_COLUMNS = ("holiday_date", "holiday_name")
# English names keep the seed ASCII; the dates are the same in every language.
HOLIDAY_LANGUAGE = "en_US"


def jp_holidays(start_year: int, end_year: int) -> list[tuple[str, str]]:
    """Japanese national holidays of ``start_year`` .. ``end_year`` (both included), in date order.

    Parameters
    ----------
    start_year, end_year : int
        First and last calendar year, inclusive.

    Returns
    -------
    list of (str, str)
        ``(ISO date, holiday name)`` pairs, substitute holidays (振替休日) and citizens'
        holidays (国民の休日) included.

    Notes
    -----
    The calendar is the PyPI ``holidays`` package's ``holidays.JP`` (national holidays as
    fixed by the Act on National Holidays, 国民の祝日に関する法律), which is what the contract
    names as the reference for ``futr_is_holiday``.
    """
    import holidays

    if end_year < start_year:
        raise ValueError(f"end_year {end_year} is before start_year {start_year}")
    calendar = holidays.JP(years=range(start_year, end_year + 1), language=HOLIDAY_LANGUAGE)
    return [(day.isoformat(), name) for day, name in sorted(calendar.items())]


def write_holiday_seed(start_year: int, end_year: int, out: Path | None = None) -> Path:
    """Write the holiday seed CSV (``holiday_date, holiday_name``) and return its path.

    Parameters
    ----------
    start_year, end_year : int
        First and last calendar year, inclusive. Every year in between should cover the draw
        dates and the scheduled future dates of every lottery: the mart treats a year
        outside the file as unknown.
    out : Path, optional
        Where to write; default ``seeds/jp_holidays.csv``.

    Returns
    -------
    Path
        The file written.

    Notes
    -----
    Reference: the PyPI ``holidays`` package (``holidays.JP``), see :func:`jp_holidays`.
    The output is deterministic (date order, ``\\n`` line endings), so regenerating with the
    same package version and years leaves the committed file unchanged.
    """
    rows = jp_holidays(start_year, end_year)
    target = Path(out) if out is not None else SEED_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SEED_COLUMNS)
        writer.writerows(rows)
    return target
