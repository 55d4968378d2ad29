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
microseconds of arithmetic. So the forest scikit-learn would grow is grown here by a numba
kernel that replays scikit-learn 1.9's own steps, and scored by walking its arrays:

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
- the score: each vector walks every tree to a leaf, adds ``depth(leaf) + c(n_leaf) - 1``
  (root depth 1; ``c`` is scikit-learn's ``_average_path_length``: 0 for n <= 1, 1 for n = 2,
  ``2 (ln(n - 1) + gamma) - 2 (n - 1) / n`` above) tree by tree, and gets
  ``2 ** -(sum / (T c(max_samples)))``.

The tests hold the result equal to ``-IsolationForest(...).fit(train).score_samples(x)``
within 1e-12 on the bundled series, and the grown trees equal to scikit-learn's arrays, so a
scikit-learn upgrade that changes its trees fails them rather than drifting silently.

On the GPU (``python_jobs.gpu.anomaly``) the same trees are grown on the CPU (microseconds
each) and all series' vectors walk them in one batched gather loop on the device. cuML's
``IsolationForest`` grows different random trees, so its scores could not meet the
GPU-vs-CPU parity of 1e-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np
from sklearn.utils.random import sample_without_replacement

from python_jobs.features._common import as_series
from python_jobs.features._numba import njit
from python_jobs.features.registry import param, register

# scikit-learn's constants: the seed range of BaseBagging and _set_random_states, the
# xorshift generator's modulus (sklearn.utils._random), the splitter's constant-feature
# tolerance (float32, sklearn.tree._partitioner) and the builder's impurity tolerance.
MAX_INT = 2**31 - 1
RAND_R_MAX = 2147483647
FEATURE_THRESHOLD = np.float32(1e-7)
EPSILON = float(np.finfo(np.float64).eps)
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
    in_bag: np.ndarray  # (trees, n) bool: the rows of each tree's bag
    targets: np.ndarray  # (n,) the uniform targets the trees' impurity is computed on
    max_samples: int
    max_depth: int


@lru_cache(maxsize=32)
def forest_plan(n_train: int, n_features: int, n_estimators: int, random_state: int) -> ForestPlan:
    """The draws scikit-learn makes for ``IsolationForest(n_estimators, random_state).fit(X)``.

    ``X`` has ``n_train`` rows and ``n_features`` columns; see the module docstring.
    """
    max_samples = min(MAX_SAMPLES, n_train)
    seeds = np.random.RandomState(random_state).randint(MAX_INT, size=n_estimators)
    states = np.empty(n_estimators, dtype=np.int64)
    in_bag = np.zeros((n_estimators, n_train), dtype=np.bool_)
    for tree, seed in enumerate(seeds):
        tree_seed = np.random.RandomState(seed).randint(MAX_INT)
        states[tree] = np.random.RandomState(tree_seed).randint(0, RAND_R_MAX)
        draws = np.random.RandomState(seed)
        sample_without_replacement(n_features, n_features, random_state=draws)
        in_bag[tree, sample_without_replacement(n_train, max_samples, random_state=draws)] = True
    targets = np.random.RandomState(random_state).uniform(size=n_train)
    max_depth = int(np.ceil(np.log2(max(max_samples, 2))))
    for array in (states, in_bag, targets):
        array.setflags(write=False)
    return ForestPlan(states, in_bag, targets, max_samples, max_depth)


@njit(cache=True, nogil=True)
def _rand_r(state: np.ndarray) -> int:  # pragma: no cover
    # sklearn.utils._random.our_rand_r: 32-bit xorshift, reduced modulo 2**31.
    seed = state[0]
    if seed == 0:
        seed = 1
    seed ^= (seed << 13) & 0xFFFFFFFF
    seed ^= seed >> 17
    seed ^= (seed << 5) & 0xFFFFFFFF
    state[0] = seed
    return seed % (RAND_R_MAX + 1)


@njit(cache=True, nogil=True)
def _variance(targets: np.ndarray, samples: np.ndarray, start: int, end: int) -> float:  # pragma: no cover
    total = 0.0
    squares = 0.0
    for p in range(start, end):
        value = targets[samples[p]]
        total += value
        squares += value * value
    count = end - start
    mean = total / count
    return squares / count - mean * mean


@njit(cache=True, nogil=True)
def _split_node(x, samples, start, end, features, constant, known, state):  # pragma: no cover
    """scikit-learn's ``node_split_random`` with ``max_features=1``: (feature, threshold, pos, constants)."""
    n_features = features.shape[0]
    f_i = n_features
    found = 0
    drawn = 0
    total = known
    visited = 0
    best_feature = -1
    best_threshold = 0.0
    best_pos = end
    while f_i > total and (visited < 1 or visited <= found + drawn):
        visited += 1
        f_j = drawn + _rand_r(state) % (f_i - found - drawn)
        if f_j < known:
            features[drawn], features[f_j] = features[f_j], features[drawn]
            drawn += 1
            continue
        f_j += found
        feature = features[f_j]
        low = x[samples[start], feature]
        high = low
        for p in range(start + 1, end):
            value = x[samples[p], feature]
            low = min(low, value)
            high = max(high, value)
        if high <= np.float32(low + FEATURE_THRESHOLD):
            features[f_j], features[total] = features[total], feature
            found += 1
            total += 1
            continue
        f_i -= 1
        features[f_i], features[f_j] = features[f_j], features[f_i]
        threshold = (np.float64(high) - np.float64(low)) * np.float64(_rand_r(state)) / RAND_R_MAX + low
        if threshold == high:
            threshold = np.float64(low)
        pos = end
        p = start
        while p < pos:
            if x[samples[p], feature] <= threshold:
                p += 1
            else:
                pos -= 1
                samples[p], samples[pos] = samples[pos], samples[p]
        # Both sides hold a row (low <= threshold < high), so the first drawn split is kept.
        best_feature, best_threshold, best_pos = feature, threshold, pos
    features[:known] = constant[:known]
    constant[known : known + found] = features[known : known + found]
    return best_feature, best_threshold, best_pos, total


@njit(cache=True, nogil=True)
def _grow_tree(x, in_bag, targets, rand_state, max_depth, nodes):  # pragma: no cover
    """Depth-first growth of one isolation tree into ``nodes`` (rows: nodes; LEFT..PATH columns).

    ``PATH`` holds ``depth + c(n_node) - 1`` (root depth 1), what a vector ending in that leaf
    adds to the path-length sum. Returns the node count.
    """
    n_features = x.shape[1]
    samples = np.flatnonzero(in_bag)
    features = np.arange(n_features)
    constant = np.empty(n_features, dtype=np.int64)
    state = np.array([rand_state], dtype=np.int64)
    capacity = nodes.shape[0]
    stack = np.empty((capacity, 5), dtype=np.int64)  # start, end, depth, parent, n_constant
    stack[0] = (0, samples.shape[0], 0, -1, 0)
    top = 1
    count = 0
    while top > 0:
        top -= 1
        start, end, depth, parent, known = stack[top]
        node = count
        count += 1
        if parent >= 0:
            side = LEFT if nodes[parent, LEFT] == -2.0 else RIGHT
            nodes[parent, side] = node
        size = end - start
        leaf = depth >= max_depth or size < 2 or _variance(targets, samples, start, end) <= EPSILON
        feature, threshold, pos, constants = -1, 0.0, end, known
        if not leaf:
            feature, threshold, pos, constants = _split_node(
                x, samples, start, end, features, constant, known, state
            )
            leaf = pos >= end
        nodes[node, FEATURE] = feature
        nodes[node, THRESHOLD] = threshold
        if size <= 1:
            path = 0.0
        elif size == 2:
            path = 1.0
        else:
            path = 2.0 * (math.log(size - 1.0) + np.euler_gamma) - 2.0 * (size - 1.0) / size
        nodes[node, PATH] = (depth + 1.0 + path) - 1.0
        if leaf:
            nodes[node, LEFT] = -1.0
            nodes[node, RIGHT] = -1.0
            continue
        # Marks "left child not yet numbered"; scikit-learn pushes the right child first.
        nodes[node, LEFT] = -2.0
        nodes[node, RIGHT] = -2.0
        stack[top] = (pos, end, depth + 1, node, constants)
        stack[top + 1] = (start, pos, depth + 1, node, constants)
        top += 2
    return count


@njit(cache=True, nogil=True)
def _grow_forest(x, in_bag, targets, rand_states, max_depth, forest):  # pragma: no cover
    for tree in range(rand_states.shape[0]):
        _grow_tree(x, in_bag[tree], targets, rand_states[tree], max_depth, forest[tree])


def max_nodes(max_depth: int) -> int:
    return 2 ** (max_depth + 1) - 1


def fit_forest(train: np.ndarray, n_estimators: int, random_state: int) -> tuple[np.ndarray, ForestPlan]:
    """The trees ``IsolationForest(...).fit(train)`` grows, as a ``(trees, nodes, 5)`` table.

    Unused node rows are NaN. ``train`` holds finite vectors, at least two.
    """
    n_train, n_features = train.shape
    plan = forest_plan(n_train, n_features, int(n_estimators), int(random_state))
    x = np.ascontiguousarray(train, dtype=np.float32)
    forest = np.full((len(plan.rand_states), max_nodes(plan.max_depth), 5), np.nan)
    _grow_forest(x, plan.in_bag, plan.targets, plan.rand_states, plan.max_depth, forest)
    return forest, plan


def denominator(plan: ForestPlan) -> float:
    """``trees * c(max_samples)``, the path-length normaliser of ``score_samples``."""
    return len(plan.rand_states) * float(average_path_length(np.array([plan.max_samples]))[0])


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
    dims = param("anomaly", "embed", embed)
    min_train = param("anomaly", "min_train", min_train)
    refit_growth = param("anomaly", "refit_growth", refit_growth)
    n_estimators = param("anomaly", "n_estimators", n_estimators)
    random_state = param("anomaly", "random_state", random_state)
    vectors = delay_embedding(arr, dims)
    finite = np.isfinite(vectors).all(axis=1)
    starts = block_starts(len(vectors), min_train, max(2, refit_growth))
    stops = [*starts[1:], len(vectors)] if starts else []
    out = []
    for start, stop in zip(starts, stops, strict=True):
        train = vectors[:start][finite[:start]]
        block = np.arange(start, stop)[finite[start:stop]]
        if len(train) < 2 or len(block) == 0:
            continue
        forest, plan = fit_forest(train, n_estimators, random_state)
        out.append(Block(forest, plan, block + dims - 1, vectors[block]))
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
    for block in blocks(arr, **params):
        out[block.rows] = score_forest(block.forest, block.plan, block.vectors)
    return {"hist_y_iforest_score": out}


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
