"""IsolationForest scores on the GPU: the CPU-grown trees, walked by every series' vectors at once.

Growing a tree is a few microseconds of sequential, branchy work per node on the CPU (numba,
:func:`python_jobs.features.anomaly.fit_forest`), and the trees must be scikit-learn's to the
last draw, so they are grown there. Scoring is the bulk of the arithmetic (every vector
through every tree) and is data-parallel: all forests of a batch are stacked into one
``(models, trees, nodes, 5)`` table, copied to the device once, and every (vector, tree) pair
advances one level per step in :func:`python_jobs.features.anomaly.score_forests_xp` (a fixed
``max_depth`` gathers). cuDF is not used: the work is a gather over a node table, not a
group-wise frame operation. The growing is the batch function's host stage
(:func:`python_jobs.gpu.with_host_stage`), which the job may run in another process.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np

from python_jobs.features._common import as_series
from python_jobs.features.anomaly import Block, blocks, denominator, score_forests_xp
from python_jobs.gpu import batching, cupy, with_host_stage

# Vectors scored per launch: bounds the (rows, trees) temporaries on the device.
ROWS_PER_LAUNCH = 1 << 18


def _stack(all_blocks: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    n_nodes = max(block.forest.shape[1] for block in all_blocks)
    n_trees = all_blocks[0].forest.shape[0]
    forests = np.full((len(all_blocks), n_trees, n_nodes, 5), np.nan)
    for pos, block in enumerate(all_blocks):
        forests[pos, :, : block.forest.shape[1]] = block.forest
    model = np.concatenate([np.full(len(b.vectors), pos) for pos, b in enumerate(all_blocks)])
    vectors = np.concatenate([b.vectors.astype(np.float32).astype(np.float64) for b in all_blocks])
    scales = np.array([denominator(block.plan) for block in all_blocks])
    depth = max(block.plan.max_depth for block in all_blocks)
    return forests, model, vectors, scales, depth


def anomaly_host(ys: list[np.ndarray], **params: int | None) -> list[list[Block]]:
    """The forests of each series and the vectors each one scores (grown on the host)."""
    return [blocks(as_series(y), **params) for y in ys]


def anomaly_batch_xp(
    xp: ModuleType, ys: list[np.ndarray], host: Callable[[], list] | None = None, **params: int | None
) -> list[dict[str, np.ndarray]]:
    """The ``anomaly`` family for many series, scored with array module ``xp``.

    ``host`` returns :func:`anomaly_host` of ``ys`` and ``params``, computed elsewhere;
    without it, here.
    """
    name = "hist_y_iforest_score"
    arrays = [as_series(y) for y in ys]
    per_series = host() if host is not None else anomaly_host(ys, **params)
    results = [{name: np.full(len(arr), np.nan)} for arr in arrays]
    flat = [(pos, block) for pos, series_blocks in enumerate(per_series) for block in series_blocks]
    if not flat:
        return results
    forests, model, vectors, scales, depth = _stack([block for _, block in flat])
    device_forests, device_scales = xp.asarray(forests), xp.asarray(scales)
    scores = np.empty(len(vectors))
    for start in range(0, len(vectors), ROWS_PER_LAUNCH):
        part = slice(start, start + ROWS_PER_LAUNCH)
        scores[part] = batching.to_host(
            xp,
            score_forests_xp(
                xp, device_forests, xp.asarray(model[part]), xp.asarray(vectors[part]), device_scales, depth
            ),
        )
    offset = 0
    for pos, block in flat:
        results[pos][name][block.rows] = scores[offset : offset + len(block.vectors)]
        offset += len(block.vectors)
    return results


@with_host_stage(anomaly_host)
def anomaly_batch(
    ys: list[np.ndarray], host: Callable[[], list] | None = None, **params: int | None
) -> list[dict[str, np.ndarray]]:
    """GPU counterpart of the ``anomaly`` family (CuPy)."""
    return anomaly_batch_xp(cupy(), ys, host, **params)
