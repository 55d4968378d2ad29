"""Command line of the next-value model: ``train``.

``train`` fits the model on the point-in-time training set of the series the service scores
(``online.market_loto`` by default, ``--loto`` for a lottery; ``--from-files`` for the bundled
files through the online engine, with no database) and saves it where ``serve`` loads it. Bad
input and unreadable marts end with exit code 2 and one line, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from python_jobs import settings
from python_jobs.redact import redact


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _fail(message: str) -> int:
    print(f"error: {redact(message)}", file=sys.stderr)
    return 2


def train_model(*, from_files: bool, out: Path, loto: str | None = None) -> None:
    """Train on the bundled files or a loto's training set, save to ``out``, print the backtest."""
    from python_jobs.realtime.layout import layout
    from python_jobs.realtime.predict import (
        features_from_files,
        model_window,
        require_scale_columns,
        train,
        training_features,
    )

    window = model_window()
    require_scale_columns(layout().hist_names, window)
    if from_files:
        source = "the bundled files through the online engine"
        features = features_from_files()
    else:
        loto = loto or settings.get().online.market_loto
        source = f"the point-in-time training set of loto {loto}"
        features = training_features(loto)
    print(
        f"training on {source}: {features['unique_id'].nunique():,} series, {len(features):,} rows, "
        f"{features['ds'].min()} to {features['ds'].max()}"
    )
    bundle, backtest = train(features, out, layout().version, window=window)
    print(f"trained on {bundle['rows']:,} rows; {len(bundle['columns'])} inputs; saved {out}")
    print(f"feature set {bundle['version']}, period {bundle['period'][0]} to {bundle['period'][1]}")
    print("walk-forward backtest, mean absolute error of the next value (each fold: a model fitted on")
    print("the rows before it):")
    print(backtest.report())
    total = backtest.overall()
    gain = 1 - total["model_mae"] / total["window_mean_mae"]
    print(f"The model is {100 * gain:+.1f}% against the {window}-draw mean. Lottery draws are random by")
    print("design, so no model should beat the mean by more than noise: a score near it is the honest result")
    print("(and shows no future data leaks in); the last-value baseline is worse because it repeats noise.")


def _check_out(out: Path) -> None:
    """Refuse an output path that cannot be the model file, before any training."""
    if out.is_dir():
        raise CommandError(f"--out {out} is a directory; give a file path such as {out / 'model.skops'}")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CommandError(f"--out {out}: {parent} is not a directory")
            break


def _cmd_train(args: argparse.Namespace) -> int:
    import psycopg

    from python_jobs.marts import MartNotReadyError
    from python_jobs.realtime.predict import MODEL_PATH, NoTrainingRows, WindowColumnsMissing
    from python_jobs.training.entities import TrainingSetError

    out = Path(args.out) if args.out else MODEL_PATH
    try:
        _check_out(out)
        train_model(from_files=args.from_files, out=out, loto=args.loto)
    except CommandError as exc:
        return _fail(str(exc))
    except NoTrainingRows as exc:
        return _fail(
            f"no rows for loto {exc} in stg_lottery__draws: run the service (`loto-features realtime "
            "serve`) to store market ticks and `make demo` to build their marts, or train a lottery "
            "with `--loto loto6`"
        )
    except (MartNotReadyError, TrainingSetError, WindowColumnsMissing) as exc:
        return _fail(str(exc))
    except psycopg.Error as exc:
        return _fail(
            f"cannot read the marts ({type(exc).__name__}); build them with `make demo`, "
            "or train with --from-files"
        )
    except OSError as exc:
        return _fail(f"cannot write the model to {out}: {exc.strerror or exc}")
    return 0


def add_parser(sub: Any, current: settings.Settings) -> None:
    """Register ``train`` on the main command's subparsers."""
    p = sub.add_parser(
        "train", help="train the next-value model on a point-in-time training set, with a backtest"
    )
    p.add_argument(
        "--loto",
        default=None,
        help=f"the series trained on (default: the stored market series, online.market_loto = "
        f"{current.online.market_loto})",
    )
    p.add_argument(
        "--from-files",
        action="store_true",
        help="features from the bundled files by the online engine (no database)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="the model file written, not a directory (default: the one serve loads, "
        ".local/models/next_value.skops)",
    )
    p.set_defaults(fn=_cmd_train)
