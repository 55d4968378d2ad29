"""Point-in-time training sets: the marts' features as they were known at each entity's time.

:func:`training_set` takes entity rows ``(loto, unique_id, ds)`` and returns, for each one, in
the input order:

* ``loto, unique_id, ds``: the entity;
* every ``hist_*`` column of ``features_hist`` at the series' latest row with ``ds`` at or
  before the entity's ``ds`` (NULL before the series' first row);
* every ``stat_*`` column of ``features_stat_history`` at the latest snapshot with ``as_of`` at
  or before ``ds``, and that snapshot's time as ``stat_as_of``. Not ``features_stat``: it holds
  one row per series computed from the whole history, so joining it would hand every earlier
  row statistics of draws that came later;
* ``target_ds``, the series' next step after ``ds`` as its schedule projects it at ``ds``, and
  the ``futr_*`` columns of ``features_futr`` for that step;
* ``label_y``: y of the series' next row after ``ds`` in ``stg_lottery__draws`` where there is
  one (NULL otherwise). It is the only value that depends on a row after ``ds``.

The joins run inside PostgreSQL: the entities are copied into a temporary table, each mart is
reached by a ``left join lateral (... order by ds desc limit 1)`` that walks the mart's
``(loto, unique_id, ds)`` index backwards from the entity's time (one index probe per entity
and mart, whatever the length of the series), and the result is copied out as CSV.

``ds`` is compared as a timestamp, so an entity at ``2020-01-01 10:30:00`` sees the draw of
that day (stored at midnight) and the marts' ``ds`` may be dates or timestamps.

Notes
-----
Why the next step comes from the schedule and not from the next row of ``features_futr``.
``features_futr`` holds one row per staged draw (``is_future`` false) and, after each lottery's
last draw, the next ``futr_horizon`` dates of its schedule (``int_calendar__schedule_projected``).
Its calendar columns are functions of the date alone (``int_calendar__dates_enriched``: date
parts, cyclical and Fourier terms, holidays from the seed), so the columns of a given date are
leak-free. But "the first row after ``ds``" is, for every entity before the last draw, a later
*draw*: its date says when the next draw actually took place, which is not known at ``ds``
(loto6 drew on 30 December 2019 and next on 9 January 2020, not on the scheduled Monday
6 January). The step is therefore taken from the schedule itself, as the model projects
future dates: the first date after ``ds`` on a weekday of ``loto_schedule`` valid at that date,
outside the New Year break; the schedule is announced in advance, so it is known at ``ds``.
Its ``futr_*`` columns are read from ``features_futr``'s row of that date; where the lottery
did not draw on it and it lies before the projected horizon there is no such row and the
``futr_*`` columns are NULL (``target_ds`` is still the scheduled date). A series whose
lottery has no schedule row (a market, a lottery of your own) steps at its own cadence as seen
at ``ds``: ``ds`` plus its last gap (NULL at its first row).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["add_parser", "training_set"]


def training_set(entities: pd.DataFrame, *, url: str | None = None) -> pd.DataFrame:
    """The point-in-time training set of ``entities``: one row per entity, in input order.

    See :func:`python_jobs.training.join.training_set` for the parameters, the columns and the
    errors; this entry point only defers importing it.
    """
    # pandas and the joins are imported on first use: the command line registers this
    # module's command without paying for them.
    from python_jobs.training import join

    return join.training_set(entities, url=url)


def _cmd_training_set(args: argparse.Namespace) -> int:
    from python_jobs.training.entities import (
        TrainingSetError,
        at_place,
        file_format,
        file_places,
        read_entities,
        write_frame,
    )

    entities_path, out = Path(args.entities), Path(args.out)
    try:
        file_format(out, "--out")
        entities = read_entities(entities_path)
        try:
            frame = training_set(entities)
        except TrainingSetError as exc:
            raise at_place(exc, file_places(entities_path)) from None
        write_frame(frame, out)
    except TrainingSetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {len(frame):,} rows, {frame.shape[1]} columns")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``training-set`` on the command line."""
    parser = sub.add_parser(
        "training-set",
        help="point-in-time features of entity rows (loto, unique_id, ds) with the next value as label",
    )
    parser.add_argument(
        "--entities", required=True, metavar="FILE", help="CSV or Parquet with columns loto, unique_id, ds"
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="the training set, .csv or .parquet")
    parser.set_defaults(fn=_cmd_training_set)
