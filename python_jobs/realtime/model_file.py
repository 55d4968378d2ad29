"""The next-value model's file: a skops archive, data only, checked before use.

``next_value.skops`` holds the ensemble that :func:`python_jobs.realtime.predict.train` saves
and its metadata (columns, window, feature-set version, trained_at, rows, backtest, loto,
training period). :func:`load_model` trusts exactly the types the ensemble holds, checks the
estimators and every tree's node indices (scikit-learn walks them without bounds checks) and
the feature-set version, and refuses anything else with :class:`ModelError`
(``docs/decisions/0010-data-only-state-and-model-files.md``).

skops and scikit-learn are imported when a file is read: skops lists every scikit-learn
estimator at import (seconds), which a service without a model file never needs.
"""

from __future__ import annotations

import itertools
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from python_jobs import config

if TYPE_CHECKING:
    from sklearn.ensemble import VotingRegressor

MODEL_PATH = config.LOCAL_DIR / "models" / "next_value.skops"
# The types of a saved ensemble that skops does not trust by default (the others it holds are
# plain estimators, NumPy and builtins). The two tree types store node indices that
# scikit-learn follows unchecked, so a loaded model's trees are bounds-checked before use.
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
)
#: The bundle's fields and their types; the model, a fitted ``VotingRegressor``, is checked by
#: :func:`_ensemble_problem`.
BUNDLE_FIELDS = {
    "model": object,
    "columns": list,
    "window": int,
    "version": str,
    "trained_at": str,
    "rows": int,
    "backtest": list,
    "loto": str,
    "period": list,
}


class ModelError(ValueError):
    """A model file that is refused; the message is one line: the file and why."""


def load_model(path: Path = MODEL_PATH, *, version: str | None = None) -> dict[str, Any] | None:
    """The bundle saved by :func:`train`, checked; None if there is no file.

    Parameters
    ----------
    path : Path
        The model file (a skops archive).
    version : str, optional
        The feature-set version the caller serves (``engine.layout.version``): a model
        trained for another is refused. None skips that check (inspection only).

    Raises
    ------
    ModelError
        Not a skops archive (a pickle is never loaded), a type outside :data:`TRUSTED_TYPES`
        and skops' safe defaults, not the ensemble :func:`train` saves (fields, estimators,
        tree node indices), or another feature-set version.
    """
    if not path.exists():
        return None
    data = path.read_bytes()
    if not data.startswith(b"PK\x03\x04"):
        kind = "a pickle, which is never loaded" if data[:1] == b"\x80" else "not a skops archive"
        raise ModelError(f"model {path} refused: {kind}; retrain with `loto-features train`")
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise ModelError(f"model {path} refused: unreadable skops archive ({type(exc).__name__})") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unexpected:
        raise ModelError(f"model {path} refused: untrusted types {', '.join(unexpected)}")
    try:
        bundle = skops.io.loads(data, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ModelError(f"model {path} refused: {str(exc).splitlines()[0]}") from None
    except Exception as exc:
        # A damaged archive can fail in any of skops' loaders; every failure means refused.
        raise ModelError(f"model {path} refused: unreadable skops archive ({type(exc).__name__})") from None
    problem = _bundle_problem(bundle)
    if problem:
        raise ModelError(f"model {path} refused: {problem}")
    if version is not None and bundle["version"] != version:
        raise ModelError(
            f"model {path} was trained for feature set {bundle['version'] or '(none)'}, the engine's is "
            f"{version}; retrain with `loto-features train`"
        )
    return bundle


def _bundle_problem(bundle: Any) -> str | None:
    """Why ``bundle`` is not what :func:`train` saves (fields, their types, the ensemble)."""
    if not isinstance(bundle, dict) or set(bundle) != set(BUNDLE_FIELDS):
        return "not a next-value model bundle"
    for name, kind in BUNDLE_FIELDS.items():
        if not isinstance(bundle[name], kind) or isinstance(bundle[name], bool):
            return f"its {name} is not a {kind.__name__}"
    columns = bundle["columns"]
    if not columns or not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        return "its columns are not distinct names"
    try:
        return _ensemble_problem(bundle["model"], len(columns))
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        # An attribute missing or of another type: not a model that train() wrote.
        return "not the fitted ensemble train() saves"


def _ensemble_problem(model: VotingRegressor, width: int) -> str | None:
    """Why ``model`` is not the fitted ensemble of :func:`_ensemble` on ``width`` inputs."""
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, VotingRegressor
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.linear_model import Ridge
    from sklearn.tree import ExtraTreeRegressor

    kinds = (Ridge, ExtraTreesRegressor, HistGradientBoostingRegressor)
    fitted = getattr(model, "estimators_", None)
    if (
        not isinstance(model, VotingRegressor)
        or model.weights is not None
        or not isinstance(fitted, list)
        or [type(estimator) for estimator in fitted] != list(kinds)
    ):
        return "not the ridge, extra-trees and boosting ensemble"
    if any(getattr(estimator, "n_features_in_", None) != width for estimator in (model, *fitted)):
        return f"an estimator does not take the {width} columns"
    ridge, trees, boost = fitted
    if np.shape(ridge.coef_) != (width,):
        return "ridge coefficients of another shape"
    for estimator in trees.estimators_:
        if type(estimator) is not ExtraTreeRegressor or not _tree_is_sound(estimator.tree_, width):
            return "an extra tree with node indices out of bounds"
    if boost.is_categorical_ is not None or boost.n_trees_per_iteration_ != 1:
        return "boosting with categorical features or several outputs"
    for predictor in itertools.chain.from_iterable(boost._predictors):
        if type(predictor) is not TreePredictor or not _nodes_are_sound(predictor.nodes, width):
            return "a boosted tree with node indices out of bounds"
    return None


def _links_are_sound(
    left: np.ndarray, right: np.ndarray, feature: np.ndarray, inner: np.ndarray, width: int
) -> bool:
    # Children after their parent (scikit-learn numbers nodes as it grows them), so every walk
    # from the root ends; features among the inputs.
    count = len(left)
    index = np.arange(count)
    return bool(
        count >= 1
        and (left[inner] > index[inner]).all()
        and (right[inner] > index[inner]).all()
        and (left[inner] < count).all()
        and (right[inner] < count).all()
        and (feature[inner] >= 0).all()
        and (feature[inner] < width).all()
    )


def _tree_is_sound(tree: Any, width: int) -> bool:
    """A decision tree's children, features and values index within the tree and the inputs."""
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    count = tree.node_count
    if tree.n_features != width or left.shape != (count,) or right.shape != (count,):
        return False
    if np.shape(tree.value) != (count, 1, 1) or np.shape(tree.feature) != (count,):
        return False
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        return False
    return _links_are_sound(left, right, np.asarray(tree.feature), ~leaf, width)


def _nodes_are_sound(nodes: np.ndarray, width: int) -> bool:
    """A boosted tree's node table: children and features in bounds, no categorical splits."""
    fields = {"left", "right", "feature_idx", "is_leaf", "is_categorical"}
    if not isinstance(nodes, np.ndarray) or nodes.ndim != 1 or not fields <= set(nodes.dtype.names or ()):
        return False
    if nodes["is_categorical"].any():
        return False
    inner = nodes["is_leaf"] == 0
    return _links_are_sound(nodes["left"], nodes["right"], nodes["feature_idx"], inner, width)
