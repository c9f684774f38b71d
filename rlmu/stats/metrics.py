"""Aggregate metrics over a ``runs x tasks`` score matrix (METHODS section 4), as defined by rliable.

Each function takes normalised scores ``x`` of shape ``(..., runs, tasks)`` and returns the aggregate over
the last two axes: a float for a 2-D input, an array of shape ``(...)`` for a batch (the bootstrap in
``rlmu.stats.bootstrap`` evaluates a whole batch of resamples in one call). A 1-D input is read as
``runs`` of a single task. The definitions are exactly those of ``rliable.metrics``:

- IQM: the 25% trimmed mean of ALL run x task scores pooled (``scipy.stats.trim_mean(x, 0.25, axis=None)``:
  drop ``int(0.25 * N)`` scores from each end of the N pooled scores, average the rest).
- Mean: mean over tasks of the per-task mean over runs.
- Median: median over tasks of the per-task mean over runs.
- Optimality gap: ``gamma - mean(min(x, gamma))`` over all runs and tasks (lower is better).

Missing values are never dropped: a NaN score makes every metric of its sample NaN, as in rliable (and as
numpy's mean does). The interval functions (``rlmu.stats.bootstrap``) refuse NaN input with an error
naming the method, so a NaN can reach a report only as an explicit "no value", never as a silently
smaller sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "AGGREGATES",
    "as_scores",
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "probability_of_improvement",
]


def as_scores(x, name: str = "scores", min_ndim: int = 2) -> np.ndarray:
    """Return ``x`` as a float array of at least ``min_ndim`` dims (1-D -> one task); reject NaN/empty input."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 1 and min_ndim == 2:
        a = a[:, None]
    if a.ndim < min_ndim:
        raise ValueError(f"{name}: expected an array of shape (runs, tasks), got shape {a.shape}")
    if a.shape[-1] == 0 or a.shape[-2] == 0:
        raise ValueError(f"{name}: needs at least one run and one task, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite scores (drop failed runs before aggregating)")
    return a


def _out(v):
    return float(v) if np.ndim(v) == 0 else v


def iqm(x) -> float | np.ndarray:
    """Interquartile mean of all run x task scores (rliable ``aggregate_iqm``); NaN if any score is NaN."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    flat = a.reshape(*a.shape[:-2], -1)
    n = flat.shape[-1]
    lo = int(0.25 * n)  # scipy.stats.trim_mean's cut
    hi = n - lo
    if lo == 0:
        return _out(flat.mean(axis=-1))
    # After partitioning at positions lo and hi-1, [lo, hi) holds exactly the middle order statistics.
    # For the few scores of a typical study a full sort is several times faster than np.partition.
    part = np.sort(flat, axis=-1) if n <= 256 else np.partition(flat, (lo, hi - 1), axis=-1)
    # einsum sums a short trailing axis much faster than .mean() over millions of rows.
    out = np.einsum("...j->...", part[..., lo:hi]) / (hi - lo)
    # Sorting moves NaN to the end, where the trim would cut it: propagate it instead. After a full sort
    # the last position shows whether a sample has one; after a partition only a full scan does.
    has_nan = np.isnan(part[..., -1]) if n <= 256 else np.isnan(flat).any(axis=-1)
    out = np.where(has_nan, np.nan, out)
    return _out(out)


def mean(x) -> float | np.ndarray:
    """Mean over tasks of per-task mean scores (rliable ``aggregate_mean``)."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    return _out(a.mean(axis=-2).mean(axis=-1))


def median(x) -> float | np.ndarray:
    """Median over tasks of per-task mean scores (rliable ``aggregate_median``)."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    return _out(np.median(a.mean(axis=-2), axis=-1))


def optimality_gap(x, gamma: float = 1.0) -> float | np.ndarray:
    """``gamma`` minus the mean of scores clipped at ``gamma`` (rliable ``aggregate_optimality_gap``)."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    return _out(gamma - np.minimum(a, gamma).mean(axis=(-2, -1)))


def probability_of_improvement(x, y) -> float | np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) per task, averaged over tasks (rliable ``probability_of_improvement``).

    ``x``: ``(..., runs_x, tasks)``, ``y``: ``(..., runs_y, tasks)`` with the same leading batch shape.
    Per task this is the Mann-Whitney U statistic of ``x`` divided by ``runs_x * runs_y``; rliable's
    special case (identical arrays -> 0.5) follows from the tie rule.
    """
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"probability_of_improvement: task counts differ ({a.shape[-1]} vs {b.shape[-1]})")
    d = a[..., :, None, :] - b[..., None, :, :]  # (..., runs_x, runs_y, tasks)
    per_task = (d > 0).mean(axis=(-3, -2)) + 0.5 * (d == 0).mean(axis=(-3, -2))
    return _out(per_task.mean(axis=-1))


AGGREGATES: dict[str, Callable] = {
    "IQM": iqm,
    "Mean": mean,
    "Median": median,
    "Optimality Gap": optimality_gap,
}
