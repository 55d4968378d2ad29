"""Point-in-time IsolationForest anomaly score: ``hist_y_iforest_score``.

Definition, with the parameters declared on the family's registration (end of this module)
``E = embed`` (3), ``M = min_train`` (128) and ``G = refit_growth`` (4):

- the feature vector of row ``t >= E - 1`` is the delay embedding
  ``x_t = (y[t - E + 1], ..., y[t - 1], y[t])`` (the value and the draws before it, so a
  row is unusual for its value *and* for the transition into it); ``j = t - E + 1`` numbers
  these vectors from 0;
- models are fitted at the block boundaries ``b = M, G M, G^2 M, ...`` (whenever the history
  has grown G-fold): the model of block ``[b, G b)`` is ``sklearn.ensemble.IsolationForest(
  n_estimators=n_estimators, max_samples='auto', contamination='auto',
  random_state=random_state)`` fitted on the vectors ``j < b``, i.e. on rows
  strictly before the block, and scores every row of the block;
- the score is ``-model.score_samples(x_t)``: the anomaly score ``s(x, psi) = 2^(-E h(x) /
  c(psi))`` of Liu, Ting & Zhou, in (0, 1], higher = more anomalous (about 0.5 for ordinary rows);
- NaN for ``j < M`` (rows ``t < M + E - 1``) and for vectors holding NaN, which are also
  left out of training.

Point in time: the value at row ``t`` depends on ``y[: t + 1]`` only, and the block
boundaries are counted from the series' first row, so cutting the series later never
changes an earlier value. The geometric schedule keeps the cost at O(log n) fits per series
(two for 1,000 rows): a fit of 32 trees is ~40-70 ms of scikit-learn overhead whatever the
history, because ``max_samples`` caps each tree at 256 rows, so a refit mostly refreshes
which rows are sampled. 32 trees: the scores correlate 0.97 with those of a 400-tree forest
on the loto6 series (16 trees: 0.93).

How it is computed. scikit-learn's ``fit`` and ``score_samples`` cost ~80 ms per series, almost
all of it per-call Python overhead (parameter validation, cloning 32 estimators, joblib) around
microseconds of arithmetic. So the forest scikit-learn would grow is grown here by numba
kernels (``python_jobs.features._iforest``) that replay scikit-learn 1.9's own steps:

- the random draws: ``seeds = RandomState(random_state).randint(2**31 - 1, size=T)``; tree
  ``i`` gets ``random_state = RandomState(seeds[i]).randint(2**31 - 1)`` and its splitter the
  xorshift state ``RandomState(that).randint(0, 2**31 - 1)``; its bag is the rows drawn by
  ``sample_without_replacement(n, max_samples)`` from ``RandomState(seeds[i])`` after it has
  drawn the feature permutation; the targets are ``RandomState(random_state).uniform(size=n)``
  (these depend on the training size only, so they are computed once per size and cached);
- the tree: scikit-learn's depth-first builder (left child first) with its ``RandomSplitter``
  (``max_features=1``; features drawn with ``rand_int``, constant features tracked and handed
  to the children as scikit-learn does; threshold ``rand_uniform(min, max)``, set to ``min``
  when it equals ``max``; samples ``<= threshold`` go left), ``max_depth =
  ceil(log2(max_samples))``, a node is a leaf at that depth, below two samples, or with a
  target variance ``<= eps``; inputs as float32, as scikit-learn casts them;
- the score: each vector reaches a leaf of every tree, adds ``depth(leaf) + c(n_leaf) - 1``
  (root depth 1; ``c`` is scikit-learn's ``_average_path_length``: 0 for n <= 1, 1 for n = 2,
  ``2 (ln(n - 1) + gamma) - 2 (n - 1) / n`` above) tree by tree, and gets
  ``2 ** -(sum / (T c(max_samples)))``. The family's vectors are not walked down the finished
  trees: they are partitioned with the training rows at every split while each tree grows
  (see ``_iforest``), one tree at a time, so a series' scores cost one kernel call per block.

The tests hold the result equal to ``-IsolationForest(...).fit(train).score_samples(x)``
within 1e-12 on the bundled series, and the grown trees equal to scikit-learn's arrays, so a
scikit-learn upgrade that changes its trees fails them rather than drifting silently.

On the GPU (``python_jobs.gpu.anomaly``) the same trees are grown on the CPU (microseconds
each) and all series' vectors walk them in one batched gather loop on the device. cuML's
``IsolationForest`` grows different random trees, so its scores could not meet the
GPU-vs-CPU parity of 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np
from sklearn.utils.random import sample_without_replacement

from python_jobs.features import _iforest
from python_jobs.features._common import as_series
from python_jobs.features._numba import njit
from python_jobs.features.registry import param, register

# scikit-learn's constants: the seed range of BaseBagging and _set_random_states and the
# xorshift generator's modulus (sklearn.utils._random); the splitter's tolerances are in _iforest.
MAX_INT = 2**31 - 1
RAND_R_MAX = _iforest.RAND_R_MAX
MAX_SAMPLES = 256
# Column layout of a fitted tree's float node table (see ``_grow_tree``).
LEFT, RIGHT, FEATURE, THRESHOLD, PATH = range(5)


def delay_embedding(y: np.ndarray, dims: int) -> np.ndarray:
    """Delay embedding: row ``j`` is ``y[j : j + dims]`` (vector of row ``t = j + dims - 1``)."""
    if len(y) < dims:
        return np.empty((0, dims))
    return np.lib.stride_tricks.sliding_window_view(y, dims).copy()


def block_starts(count: int, min_train: int, growth: int) -> list[int]:
    """Fit points ``M, G M, G^2 M, ...`` below ``count`` vectors."""
    starts = []
    start = min_train
    while start < count:
        starts.append(start)
        start *= growth
    return starts


def average_path_length(n: np.ndarray) -> np.ndarray:
    """scikit-learn's ``c(n)``: the average path length of an unsuccessful search in a BST of n."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros(n.shape)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@dataclass(frozen=True)
class ForestPlan:
    """The random draws of one IsolationForest fit, which depend on the training size only."""

    rand_states: np.ndarray  # (trees,) int64: each splitter's xorshift state
    bags: np.ndarray  # (trees, max_samples) int64: the rows of each tree's bag, increasing
    targets: np.ndarray  # (n,) the uniform targets the trees' impurity is computed on
    check_variance: np.ndarray  # (trees,) bool: whether a node's target variance can reach eps
    max_samples: int
    max_depth: int
    scale: float  # trees * c(max_samples), the path-length normaliser of score_samples

    def kernel_args(self) -> tuple:
        """``bags, targets, check_variance, rand_states, max_depth`` as the kernels take them."""
        return self.bags, self.targets, self.check_variance, self.rand_states, self.max_depth


@lru_cache(maxsize=32)
def forest_plan(n_train: int, n_features: int, n_estimators: int, random_state: int) -> ForestPlan:
    """The draws scikit-learn makes for ``IsolationForest(n_estimators, random_state).fit(X)``.

    ``X`` has ``n_train`` rows and ``n_features`` columns; see the module docstring. Cached:
    the draws are those of the (constant) ``random_state`` and the training size, so a panel
    of series of one length creates its ``RandomState`` objects once.
    """
    max_samples = min(MAX_SAMPLES, n_train)
    seeds = np.random.RandomState(random_state).randint(MAX_INT, size=n_estimators)
    states = np.empty(n_estimators, dtype=np.int64)
    bags = np.empty((n_estimators, max_samples), dtype=np.int64)
    for tree, seed in enumerate(seeds):
        tree_seed = np.random.RandomState(seed).randint(MAX_INT)
        states[tree] = np.random.RandomState(tree_seed).randint(0, RAND_R_MAX)
        draws = np.random.RandomState(seed)
        sample_without_replacement(n_features, n_features, random_state=draws)
        bags[tree] = np.sort(sample_without_replacement(n_train, max_samples, random_state=draws))
    targets = np.random.RandomState(random_state).uniform(size=n_train)
    check = np.array([_iforest.variance_can_vanish(targets[bag]) for bag in bags], dtype=np.bool_)
    max_depth = int(np.ceil(np.log2(max(max_samples, 2))))
    for array in (states, bags, targets, check):
        array.setflags(write=False)
    scale = n_estimators * float(average_path_length(np.array([max_samples]))[0])
    return ForestPlan(states, bags, targets, check, max_samples, max_depth, scale)


def max_nodes(max_depth: int) -> int:
    return 2 ** (max_depth + 1) - 1


def fit_forest(train: np.ndarray, n_estimators: int, random_state: int) -> tuple[np.ndarray, ForestPlan]:
    """The trees ``IsolationForest(...).fit(train)`` grows, as a ``(trees, nodes, 5)`` table.

    Unused node rows are NaN. ``train`` holds finite vectors, at least two.
    """
    n_train, n_features = train.shape
    plan = forest_plan(n_train, n_features, int(n_estimators), int(random_state))
    trees, nodes = len(plan.rand_states), max_nodes(plan.max_depth)
    walk = (
        np.zeros((trees, nodes), dtype=np.int64),
        np.zeros((trees, nodes)),
        np.zeros((trees, nodes), dtype=np.int64),
        np.zeros((trees, nodes)),
    )
    counts = np.empty(trees, dtype=np.int64)
    _iforest.grow_forest(transposed(train), *plan.kernel_args(), *walk, counts)
    return _node_table(*walk, counts), plan


@njit(cache=True, nogil=True)
def _node_table(feature, threshold, right, path, counts):  # pragma: no cover
    # The walk arrays of _iforest as the (trees, nodes, LEFT..PATH) table, NaN past each tree.
    forest = np.full((feature.shape[0], feature.shape[1], 5), np.nan)
    for tree in range(feature.shape[0]):
        for node in range(counts[tree]):
            inner = right[tree, node] != node
            forest[tree, node, LEFT] = node + 1 if inner else -1
            forest[tree, node, RIGHT] = right[tree, node] if inner else -1
            forest[tree, node, FEATURE] = feature[tree, node] if inner else -1
            forest[tree, node, THRESHOLD] = threshold[tree, node] if inner else 0.0
            forest[tree, node, PATH] = path[tree, node]
    return forest


def transposed(train: np.ndarray) -> np.ndarray:
    """The training vectors as the kernels read them: float32, one contiguous row per feature."""
    return np.ascontiguousarray(train.T, dtype=np.float32)


def denominator(plan: ForestPlan) -> float:
    """``trees * c(max_samples)``, the path-length normaliser of ``score_samples``."""
    return plan.scale


@njit(cache=True, nogil=True)
def _score(children, feature, threshold, path, x, scale, out):  # pragma: no cover
    # Tree by tree (one tree's arrays stay in cache), adding to each row's sum in tree order,
    # as scikit-learn does. ``children[t, 2 node + side]``, side 1 for "greater": the step
    # to the next node is an index computation, not a branch.
    total = np.zeros(x.shape[0])
    for tree in range(children.shape[0]):
        for row in range(x.shape[0]):
            node = 0
            while children[tree, 2 * node] >= 0:
                greater = x[row, feature[tree, node]] > threshold[tree, node]
                node = children[tree, 2 * node + greater]
            total[row] += path[tree, node]
    for row in range(x.shape[0]):
        out[row] = 2.0 ** (-(total[row] / scale))


@njit(cache=True, nogil=True)
def _typed(forest, children, feature, threshold, path):  # pragma: no cover
    # The float node table as typed arrays for _score (unused rows: never reached).
    for tree in range(forest.shape[0]):
        for node in range(forest.shape[1]):
            if np.isnan(forest[tree, node, LEFT]):
                children[tree, 2 * node] = -1
                continue
            children[tree, 2 * node] = int(forest[tree, node, LEFT])
            children[tree, 2 * node + 1] = int(forest[tree, node, RIGHT])
            feature[tree, node] = max(0, int(forest[tree, node, FEATURE]))
            threshold[tree, node] = forest[tree, node, THRESHOLD]
            path[tree, node] = forest[tree, node, PATH]


def _kernel_arrays(forest: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    trees, nodes, _ = forest.shape
    arrays = (
        np.empty((trees, 2 * nodes), dtype=np.int64),
        np.zeros((trees, nodes), dtype=np.int64),
        np.zeros((trees, nodes)),
        np.zeros((trees, nodes)),
    )
    _typed(forest, *arrays)
    return arrays


class ForestScorer:
    """One fitted forest, ready to score vectors one at a time (the online engine's use).

    The typed node arrays are built once, so a single vector costs one tree walk, not the
    conversion of the forest.
    """

    def __init__(self, forest: np.ndarray, plan: ForestPlan) -> None:
        self.arrays = _kernel_arrays(forest)
        self.scale = denominator(plan)
        self._out = np.empty(1)

    def score(self, vector: np.ndarray) -> float:
        """``-score_samples`` of one vector (higher = more anomalous)."""
        x = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1), dtype=np.float64)
        _score(*self.arrays, x, self.scale, self._out)
        return float(self._out[0])


def score_forest(forest: np.ndarray, plan: ForestPlan, vectors: np.ndarray) -> np.ndarray:
    """``-score_samples(vectors)`` of the forest (CPU, numba)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32).astype(np.float64)
    out = np.empty(len(x))
    _score(*_kernel_arrays(forest), x, denominator(plan), out)
    return out


def score_forests_xp(xp: ModuleType, forests, model, vectors, scales, depth: int):
    """``-score_samples`` of many vectors, each in its own forest, with array module ``xp``.

    Parameters
    ----------
    xp : module
        NumPy or CuPy.
    forests : array (models, trees, nodes, 5)
        Fitted tables of :func:`fit_forest`, padded with NaN to a common node count.
    model : int array (rows,)
        The forest of each vector.
    vectors : array (rows, features)
        float32 values widened to float64.
    scales : array (models,)
        :func:`denominator` of each forest.
    depth : int
        The deepest tree's ``max_depth``: every vector reaches its leaf within that many steps.

    Returns
    -------
    array (rows,)
        The scores; all (row, tree) pairs advance one level per step, in a fixed number of
        gathers, so one launch scores a whole batch on a device.
    """
    n_models, n_trees, n_nodes, _ = forests.shape
    table = forests.reshape(n_models * n_trees * n_nodes, 5)
    base = (model[:, None] * n_trees + xp.arange(n_trees)[None, :]) * n_nodes  # (rows, trees)
    node = xp.zeros(base.shape, dtype=xp.int64)
    rows = xp.arange(vectors.shape[0])[:, None]
    for _ in range(depth):
        entry = table[base + node]
        inner = entry[..., LEFT] >= 0
        feature = xp.where(inner, entry[..., FEATURE], 0).astype(xp.int64)
        go_left = vectors[rows, feature] <= entry[..., THRESHOLD]
        step = xp.where(go_left, entry[..., LEFT], entry[..., RIGHT])
        node = xp.where(inner, step, node).astype(xp.int64)
    paths = table[base + node][..., PATH]
    total = xp.zeros(vectors.shape[0])
    for tree in range(n_trees):  # tree by tree, the order scikit-learn sums in
        total = total + paths[:, tree]
    return 2.0 ** (-(total / scales[model]))


@dataclass(frozen=True)
class Block:
    """One fit of the schedule: the forest and the rows (indices into ``y``) it scores."""

    forest: np.ndarray
    plan: ForestPlan
    rows: np.ndarray
    vectors: np.ndarray


def block_inputs(
    arr: np.ndarray,
    *,
    embed: int | None = None,
    min_train: int | None = None,
    refit_growth: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(train, rows, vectors)`` of each fit of the schedule: the finite training vectors, the
    rows (indices into ``arr``) the model scores and their vectors (module docstring)."""
    dims = param("anomaly", "embed", embed)
    min_train = param("anomaly", "min_train", min_train)
    refit_growth = param("anomaly", "refit_growth", refit_growth)
    vectors = delay_embedding(arr, dims)
    finite = np.isfinite(vectors).all(axis=1)
    starts = block_starts(len(vectors), min_train, max(2, refit_growth))
    stops = [*starts[1:], len(vectors)] if starts else []
    out = []
    for start, stop in zip(starts, stops, strict=True):
        train = vectors[:start] if finite[:start].all() else vectors[:start][finite[:start]]
        block = np.arange(start, stop)[finite[start:stop]]
        if len(train) < 2 or len(block) == 0:
            continue
        out.append((train, block + dims - 1, vectors[block]))
    return out


def blocks(
    arr: np.ndarray,
    *,
    embed: int | None = None,
    min_train: int | None = None,
    refit_growth: int | None = None,
    n_estimators: int | None = None,
    random_state: int | None = None,
) -> list[Block]:
    """The fitted forests of a series and the vectors each one scores (module docstring).

    The parameters default to the family's declared values.
    """
    n_estimators = param("anomaly", "n_estimators", n_estimators)
    random_state = param("anomaly", "random_state", random_state)
    out = []
    for train, rows, vectors in block_inputs(
        arr, embed=embed, min_train=min_train, refit_growth=refit_growth
    ):
        forest, plan = fit_forest(train, n_estimators, random_state)
        out.append(Block(forest, plan, rows, vectors))
    return out


def anomaly(y, **params: int | None) -> dict[str, np.ndarray]:
    """IsolationForest anomaly score of each row, fitted on earlier rows only.

    Parameters
    ----------
    y : array_like
        The series in ``ds`` order.
    **params : int, optional
        ``embed``, ``min_train``, ``refit_growth``, ``n_estimators``, ``random_state`` as in the
        module docstring; default the family's declared values.

    Returns
    -------
    dict of str to numpy.ndarray
        ``hist_y_iforest_score`` of ``len(y)`` as defined in the module docstring.

    Notes
    -----
    Reference: scikit-learn ``IsolationForest.score_samples`` (negated). F. T. Liu, K. M. Ting,
    Z.-H. Zhou, "Isolation Forest", ICDM 2008, DOI 10.1109/ICDM.2008.17.
    """
    arr = as_series(y)
    out = np.full(len(arr), np.nan)
    trees = param("anomaly", "n_estimators", params.pop("n_estimators", None))
    seed = param("anomaly", "random_state", params.pop("random_state", None))
    if np.isfinite(arr).all():
        inputs = finite_kernel_inputs(arr, **params)
    else:
        inputs = [
            (transposed(train), widened(vectors), rows)
            for train, rows, vectors in block_inputs(arr, **params)
        ]
    # Each forest is grown and scores its block's vectors in one kernel call (_iforest).
    for xt, xs, rows in inputs:
        plan = forest_plan(xt.shape[1], xt.shape[0], int(trees), int(seed))
        scores = np.empty(xs.shape[1])
        _iforest.fit_and_score(xt, *plan.kernel_args(), xs, plan.scale, scores)
        out[rows] = scores
    return {"hist_y_iforest_score": out}


def widened(vectors: np.ndarray) -> np.ndarray:
    """Vectors to score as the kernels read them: float32 values as float64, one row per feature."""
    return np.ascontiguousarray(vectors.T, dtype=np.float32).astype(np.float64)


def finite_kernel_inputs(
    arr: np.ndarray,
    *,
    embed: int | None = None,
    min_train: int | None = None,
    refit_growth: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray, slice]]:
    """``(transposed(train), widened(vectors), rows)`` of each block of a series without NaN.

    The same arrays as from :func:`block_inputs`, cut straight from the series (feature ``f`` of
    vector ``j`` is ``y[j + f]``) instead of through the embedding and finiteness masks.
    """
    dims = param("anomaly", "embed", embed)
    min_train = param("anomaly", "min_train", min_train)
    refit_growth = param("anomaly", "refit_growth", refit_growth)
    count = len(arr) - dims + 1
    starts = block_starts(count, min_train, max(2, refit_growth))
    values = arr.astype(np.float32)
    wide = values.astype(np.float64)
    out = []
    stops = [*starts[1:], count] if starts else []
    for start, stop in zip(starts, stops, strict=True):
        if start < 2:
            continue
        xt = np.empty((dims, start), dtype=np.float32)
        xs = np.empty((dims, stop - start))
        for f in range(dims):
            xt[f] = values[f : start + f]
            xs[f] = wide[start + f : stop + f]
        out.append((xt, xs, slice(start + dims - 1, stop + dims - 1)))
    return out


@register(
    "anomaly",
    kind="hist",
    outputs=["hist_y_iforest_score"],
    # Part of the family's version: changing one recomputes the scores everywhere.
    params={"embed": 3, "min_train": 128, "refit_growth": 4, "n_estimators": 32, "random_state": 0},
    version=1,
    libraries=("scikit-learn",),
    cost="high",
    gpu="python_jobs.gpu.anomaly:anomaly_batch",
    reference="sklearn.ensemble.IsolationForest.score_samples (negated)",
)
def anomaly_family(y: np.ndarray, **params: int) -> dict[str, np.ndarray]:
    return anomaly(y, **params)
