"""numba kernels of the isolation forest of :mod:`python_jobs.features.anomaly`.

A tree is grown exactly as scikit-learn's depth-first builder with its ``RandomSplitter`` grows
it (see the anomaly module's docstring for the definition) into four flat "walk" arrays:

- ``feature[node]``, ``threshold[node]``: the split of an inner node; a leaf holds feature 0
  and threshold ``-inf``;
- ``right[node]``: the right child of an inner node, the node itself for a leaf. The left
  child is always ``node + 1`` (nodes are numbered depth first, left child first, as
  scikit-learn numbers them), so a walk is ``node = right[node] if x[feature] > threshold
  else node + 1`` for ``max_depth`` steps;
- ``path[node]``: ``depth + c(n_node) - 1`` (root depth 1), what a vector ending there adds.

Why it is fast:

- the vectors to score travel down each tree while it is grown: at every split they are
  partitioned by the same threshold as the training rows, and at a leaf each adds its path
  length, so a tree is never walked vector by vector (a walk is a chain of dependent loads);
- the builder keeps one set of work buffers for all trees of a forest and reads each feature
  from a contiguous row of the transposed training matrix;
- partitions are branch-free and write each item once: a node at depth ``d`` reads its training
  rows and scored rows from buffer ``d % 2`` and writes the two sides into buffer
  ``(d + 1) % 2`` (the "<=" side from the left, the other from the right), where its children
  read them. Only the two sets matter to the tree, except for the variance sums below, so
  scikit-learn's in-place swaps are replayed only for trees that compute those;
- a split whose children are both leaves (by depth or size) numbers them at once: its samples
  are only counted, not partitioned, and its scored rows add their leaf's path directly;
- the node-impurity test ``variance(targets) <= eps`` is skipped for a tree whose bag's
  targets are too far apart for any node ever to pass it (``variance_can_vanish``), which
  is decided once per training size.
"""

from __future__ import annotations

import math

import numpy as np

from python_jobs.features._numba import njit

RAND_R_MAX = 2147483647
FEATURE_THRESHOLD = np.float32(1e-7)
EPSILON = float(np.finfo(np.float64).eps)


def variance_can_vanish(bag_targets: np.ndarray) -> bool:
    """Whether some node of a tree grown on these targets could have a variance ``<= eps``.

    ``k`` targets at least ``g`` apart have a variance of at least ``g**2 (k**2 - 1) / 12``
    (that of ``k`` equally spaced values); the computed ``E[t^2] - E[t]^2`` of ``k`` values
    in ``[0, 1)`` is within ``(1.5 k + 2) eps`` of the true variance. Where the first stays
    above twice the second plus ``eps`` for every node size, the test can never pass.
    """
    count = len(bag_targets)
    if count < 2:
        return False
    gap = float(np.diff(np.sort(bag_targets)).min())
    k = np.arange(2, count + 1, dtype=np.float64)
    lowest = gap * gap * (k * k - 1.0) / 12.0
    rounding = (1.5 * k + 2.0) * EPSILON
    return bool((lowest <= 2.0 * (rounding + EPSILON)).any())


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
def _draw_below(value: int, bound: int) -> int:  # pragma: no cover
    # ``value % bound`` for a non-negative value; the few feature counts of an embedding get
    # constant divisors, which compile to multiplications instead of a 64-bit division.
    if bound == 1:
        return 0
    if bound == 2:
        return value & 1
    if bound == 3:
        return value % 3
    if bound == 4:
        return value & 3
    return value % bound


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
def _partition(samples, values, start, end, threshold):  # pragma: no cover
    # scikit-learn's partition_samples: rows <= threshold first, same swaps, same order.
    pos = end
    p = start
    while p < pos:
        if values[p] <= threshold:
            p += 1
        else:
            pos -= 1
            values[p], values[pos] = values[pos], values[p]
            samples[p], samples[pos] = samples[pos], samples[p]
    return pos


@njit(cache=True, nogil=True)
def _split_into(src, dst, values, start, end, threshold):  # pragma: no cover
    # The same two sets as _partition, written to ``dst``: the "<=" side from ``start`` up, the
    # "greater" side from ``end - 1`` down, one store per item and no branch (``values[p]``
    # belongs to ``src[p]``). Returns the first position of the "greater" side.
    low = start
    high = end - 1
    for p in range(start, end):
        greater = np.int64(values[p] > threshold)
        dst[low + greater * (high - low)] = src[p]
        low += 1 - greater
        high -= greater
    return low


@njit(cache=True, nogil=True)
def _route(src, dst, xs, feature, start, end, threshold):  # pragma: no cover
    # The scored rows at a node, split like its training rows (``xs[feature, row] > threshold``
    # go right) as _split_into splits them; their order within a node does not matter.
    low = start
    high = end - 1
    for p in range(start, end):
        row = src[p]
        greater = np.int64(xs[feature, row] > threshold)
        dst[low + greater * (high - low)] = row
        low += 1 - greater
        high -= greater
    return low


@njit(cache=True, nogil=True)
def _split_node(
    xt, samples, side, values, start, end, features, constant, known, state, in_order, count_only
):  # pragma: no cover
    """scikit-learn's ``node_split_random`` with ``max_features=1``: (feature, threshold, pos, constants).

    The node's samples are ``samples[side, start:end]``; they leave split into
    ``samples[1 - side, start:end]``. ``in_order``: with scikit-learn's swaps (their order then
    matters to the variance sums); otherwise only the two sets matter, and a branch-free
    partition makes them. ``count_only``: the children are leaves, whose samples are never
    read again, so only the size of the "<=" side is counted.
    """
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
        f_j = drawn + _draw_below(_rand_r(state), f_i - found - drawn)
        if f_j < known:
            features[drawn], features[f_j] = features[f_j], features[drawn]
            drawn += 1
            continue
        f_j += found
        feature = features[f_j]
        low = xt[feature, samples[side, start]]
        high = low
        for p in range(start, end):
            value = xt[feature, samples[side, p]]
            values[p] = value
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
        # Both sides hold a row (low <= threshold < high), so the first drawn split is kept.
        best_feature, best_threshold = feature, threshold
        if count_only:
            best_pos = start
            for p in range(start, end):
                best_pos += np.int64(values[p] <= threshold)
        elif in_order:
            best_pos = _partition(samples[side], values, start, end, threshold)
            samples[1 - side, start:end] = samples[side, start:end]
        else:
            best_pos = _split_into(samples[side], samples[1 - side], values, start, end, threshold)
    for f in range(known):
        features[f] = constant[f]
    for f in range(known, known + found):
        constant[f] = features[f]
    return best_feature, best_threshold, best_pos, total


@njit(cache=True, nogil=True)
def _average_path(size: int) -> float:  # pragma: no cover
    # scikit-learn's _average_path_length c(n).
    if size <= 1:
        return 0.0
    if size == 2:
        return 1.0
    return 2.0 * (math.log(size - 1.0) + np.euler_gamma) - 2.0 * (size - 1.0) / size


@njit(cache=True, nogil=True)
def _average_paths(n_samples: int) -> np.ndarray:  # pragma: no cover
    # c(n) for every node size, once per forest rather than one logarithm per node.
    table = np.empty(n_samples + 1)
    for size in range(n_samples + 1):
        table[size] = _average_path(size)
    return table


@njit(cache=True, nogil=True)
def grow_tree(
    xt, bag, targets, check_variance, rand_state, max_depth, work, feature, threshold, right, path, xs, total
):  # pragma: no cover
    """Grow one tree into the walk arrays; returns its node count.

    ``xt`` is the training matrix transposed (features, rows) as float32; ``bag`` the rows of
    the tree's sample in increasing order; ``work`` the buffers of :func:`work_buffers`.
    The vectors ``xs`` (features, rows) to score travel down the tree with the training rows,
    split by the same thresholds, and each adds its leaf's path length to ``total[row]``.
    """
    samples, values, features, constant, stack, state, rows, average_paths = work
    n_features = xt.shape[0]
    size = bag.shape[0]
    for p in range(size):
        samples[0, p] = bag[p]
    for f in range(n_features):
        features[f] = f
    for row in range(xs.shape[1]):
        rows[0, row] = row
    state[0] = rand_state
    _push(stack, 0, 0, size, 0, -1, 0, 0, xs.shape[1])
    top = 1
    count = 0
    while top > 0:
        top -= 1
        start, end, depth = stack[top, 0], stack[top, 1], stack[top, 2]
        parent, known, row_start, row_end = stack[top, 3], stack[top, 4], stack[top, 5], stack[top, 6]
        node = count
        count += 1
        if parent >= 0:  # a right child (a left child is its parent's node + 1)
            right[parent] = node
        n_node = end - start
        path[node] = (depth + 1.0 + average_paths[n_node]) - 1.0
        leaf = depth >= max_depth or n_node < 2
        # A node at depth d finds its samples and rows in buffer d % 2 and splits them into
        # buffer (d + 1) % 2, where its children find them.
        side = depth % 2
        if not leaf and check_variance:
            leaf = _variance(targets, samples[side], start, end) <= EPSILON
        pos = end
        constants = known
        split_feature, split_threshold = 0, 0.0
        if not leaf:
            children_are_leaves = depth + 1 >= max_depth
            split_feature, split_threshold, pos, constants = _split_node(
                xt,
                samples,
                side,
                values,
                start,
                end,
                features,
                constant,
                known,
                state,
                check_variance,
                children_are_leaves,
            )
            leaf = pos >= end
        if leaf:
            _leaf(node, path[node], feature, threshold, right, path)
            for p in range(row_start, row_end):
                total[rows[side, p]] += path[node]
            continue
        feature[node] = split_feature
        threshold[node] = split_threshold
        if depth + 1 >= max_depth or (pos - start < 2 and end - pos < 2):
            left_path, right_path = _leaf_pair(
                node, depth, pos - start, end - pos, average_paths, feature, threshold, right, path
            )
            for p in range(row_start, row_end):  # each scored row adds its leaf's path directly
                row = rows[side, p]
                total[row] += right_path if xs[split_feature, row] > split_threshold else left_path
            count += 2
            continue
        row_pos = _route(rows[side], rows[1 - side], xs, split_feature, row_start, row_end, split_threshold)
        # scikit-learn pushes the right child first, so the left one is built next.
        _push(stack, top, pos, end, depth + 1, node, constants, row_pos, row_end)
        _push(stack, top + 1, start, pos, depth + 1, -1, constants, row_start, row_pos)
        top += 2
    return count


@njit(cache=True, nogil=True)
def _leaf_pair(
    node, depth, n_left, n_right, average_paths, feature, threshold, right, path
):  # pragma: no cover
    # Both children of ``node`` are leaves (by depth or size, whatever their variance): they are
    # numbered node + 1 and node + 2 at once, and the scored rows are not partitioned.
    left_path = (depth + 2.0 + average_paths[n_left]) - 1.0
    right_path = (depth + 2.0 + average_paths[n_right]) - 1.0
    _leaf(node + 1, left_path, feature, threshold, right, path)
    _leaf(node + 2, right_path, feature, threshold, right, path)
    right[node] = node + 2
    return left_path, right_path


@njit(cache=True, nogil=True)
def _leaf(node, leaf_path, feature, threshold, right, path):  # pragma: no cover
    # A leaf in the walk arrays: threshold -inf and itself as right child (a walk stays there).
    feature[node] = 0
    threshold[node] = -np.inf
    right[node] = node
    path[node] = leaf_path


@njit(cache=True, nogil=True)
def _push(stack, top, start, end, depth, parent, known, row_start, row_end):  # pragma: no cover
    stack[top, 0] = start
    stack[top, 1] = end
    stack[top, 2] = depth
    stack[top, 3] = parent
    stack[top, 4] = known
    stack[top, 5] = row_start
    stack[top, 6] = row_end


@njit(cache=True, nogil=True)
def work_buffers(n_samples: int, n_features: int, max_depth: int, n_rows: int):  # pragma: no cover
    """Buffers shared by the trees of a forest: samples (two sides), values, features,
    constants, stack, rng state, scored rows (two sides), c(n) by node size."""
    return (
        np.empty((2, n_samples), dtype=np.int64),
        np.empty(n_samples, dtype=np.float32),
        np.empty(n_features, dtype=np.int64),
        np.empty(n_features, dtype=np.int64),
        np.empty((2 * max_depth + 2, 7), dtype=np.int64),
        np.empty(1, dtype=np.int64),
        np.empty((2, n_rows), dtype=np.int64),
        _average_paths(n_samples),
    )


@njit(cache=True, nogil=True)
def grow_forest(
    xt, bags, targets, check_variance, rand_states, max_depth, feature, threshold, right, path, counts
):  # pragma: no cover
    """Grow every tree of a forest into rows of the walk arrays (``counts``: nodes per tree)."""
    work = work_buffers(bags.shape[1], xt.shape[0], max_depth, 0)
    xs = np.empty((xt.shape[0], 0))
    total = np.empty(0)
    for tree in range(rand_states.shape[0]):
        counts[tree] = grow_tree(
            xt,
            bags[tree],
            targets,
            check_variance[tree],
            rand_states[tree],
            max_depth,
            work,
            feature[tree],
            threshold[tree],
            right[tree],
            path[tree],
            xs,
            total,
        )


@njit(cache=True, nogil=True)
def fit_and_score(
    xt, bags, targets, check_variance, rand_states, max_depth, xs, scale, out
):  # pragma: no cover
    """Grow each tree with the vectors ``xs`` (features, rows) travelling down it:
    ``out = 2 ** -(sum of path lengths / scale)``.

    Path lengths are added tree by tree in tree order, as scikit-learn adds them.
    """
    nodes = 2 ** (max_depth + 1) - 1
    work = work_buffers(bags.shape[1], xt.shape[0], max_depth, xs.shape[1])
    feature = np.empty(nodes, dtype=np.int64)
    threshold = np.empty(nodes)
    right = np.empty(nodes, dtype=np.int64)
    path = np.empty(nodes)
    total = np.zeros(xs.shape[1])
    for tree in range(rand_states.shape[0]):
        grow_tree(
            xt,
            bags[tree],
            targets,
            check_variance[tree],
            rand_states[tree],
            max_depth,
            work,
            feature,
            threshold,
            right,
            path,
            xs,
            total,
        )
    for row in range(xs.shape[1]):
        out[row] = 2.0 ** (-(total[row] / scale))
