"""Stratified-bootstrap interval estimates (METHODS section 4), vectorised and reproducible.

The resampling scheme is rliable's ``StratifiedBootstrap`` with ``task_bootstrap=False``: in every
repetition, the runs of each task are drawn with replacement, independently per task; tasks are kept.
Several score arrays (probability of improvement, differences between methods) are resampled
independently of each other, as rliable's ``StratifiedIndependentBootstrap``. Intervals are percentile
intervals with numpy's linear interpolation, which is what rliable's default ``method='percentile'``
computes through ``arch``.

Differences from rliable, on purpose:
- Randomness comes from ``np.random.default_rng``, never numpy's global generator. Each method (or pair)
  gets its own stream derived from ``(seed, name)``, so the same seed gives identical intervals, and adding
  a method to a study leaves the other methods' intervals unchanged.
- Whole resamples are evaluated at once on index arrays, in chunks of bounded memory, instead of one
  Python call per repetition.
- IQM curves resample a run's whole curve (the same runs at every evaluation point). rliable draws the runs
  independently at every point; the pointwise intervals have the same distribution either way.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rlmu.stats.metrics import AGGREGATES, as_scores, iqm
from rlmu.stats.metrics import probability_of_improvement as _poi

__all__ = [
    "Interval",
    "aggregate_intervals",
    "iqm_curves",
    "percentile_interval",
    "probability_of_improvement",
    "rng_for",
    "stratified_bootstrap",
]

# Elements of resampled data held in memory at once (float64: 8 bytes each -> 32 MiB).
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval ``[low, high]``."""

    point: float
    low: float
    high: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.point, self.low, self.high)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``names`` (e.g. a method name), stable across runs."""
    key = tuple(zlib.crc32(str(n).encode("utf-8")) for n in names)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def _check_bootstrap_args(reps: int, confidence: float) -> None:
    if int(reps) < 1:
        raise ValueError(f"reps must be a positive integer, got {reps}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def percentile_interval(values: np.ndarray, confidence: float = 0.95, method: str = "linear"):
    """Percentile interval of bootstrap ``values`` (reps, ...) -> (low, high), each of shape ``(...)``.

    ``method`` is numpy's quantile method; ``'linear'`` matches arch/rliable. Use ``'inverted_cdf'`` for
    statistics that can be infinite (linear interpolation between inf and a number is undefined).
    """
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)], axis=0, method=method)
    return low, high


def _resample_chunks(arrays: Sequence[np.ndarray], reps: int, rng: np.random.Generator):
    """Yield tuples of resampled arrays, each ``(chunk, runs_i, tasks, ...)``, ``reps`` rows in total.

    Every array is ``(runs_i, tasks, ...)``; its runs are redrawn with replacement within each task.
    """
    per_rep = sum(a.size for a in arrays)
    chunk = max(1, _CHUNK_ELEMENTS // max(per_rep, 1))
    done = 0
    while done < reps:
        c = min(chunk, reps - done)
        out = []
        for a in arrays:
            runs, tasks = a.shape[0], a.shape[1]
            idx = rng.integers(0, runs, size=(c, runs, tasks))
            out.append(a[idx, np.arange(tasks)])
        done += c
        yield tuple(out)


def stratified_bootstrap(
    statistic: Callable[..., np.ndarray],
    arrays: Sequence[np.ndarray],
    reps: int = 50_000,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Bootstrap distribution of ``statistic`` over independent stratified resamples of ``arrays``.

    ``arrays``: each ``(runs_i, tasks, ...)``. ``statistic`` is called with one batch of resamples per
    array, each ``(batch, runs_i, tasks, ...)``, and must return ``(batch, ...)``. Returns ``(reps, ...)``.
    ``seed`` is an int or a ready ``np.random.Generator``.
    """
    _check_bootstrap_args(reps, 0.5)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    parts = [np.asarray(statistic(*batch)) for batch in _resample_chunks(arrays, int(reps), rng)]
    return np.concatenate(parts, axis=0)


def aggregate_intervals(
    scores: Mapping[str, np.ndarray],
    metrics: Mapping[str, Callable] = AGGREGATES,
    reps: int = 50_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, Interval]]:
    """Point estimates and stratified-bootstrap percentile intervals of aggregate metrics.

    ``scores``: method -> normalised scores ``(runs, tasks)`` (1-D = one task). ``metrics``: name ->
    function of ``(..., runs, tasks)`` returning ``(...)`` (as in ``rlmu.stats.metrics``). All metrics of a
    method are evaluated on the same resamples. Returns ``{method: {metric: Interval}}``.
    """
    _check_bootstrap_args(reps, confidence)
    out: dict[str, dict[str, Interval]] = {}
    for method, x in scores.items():
        x = as_scores(x, name=f"scores[{method!r}]")
        rng = rng_for(seed, method)
        values = {m: [] for m in metrics}
        for (sample,) in _resample_chunks([x], int(reps), rng):
            for m, f in metrics.items():
                values[m].append(np.asarray(f(sample), dtype=float))
        out[method] = {}
        for m, f in metrics.items():
            low, high = percentile_interval(np.concatenate(values[m]), confidence)
            out[method][m] = Interval(float(f(x)), float(low), float(high))
    return out


def _as_curves(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 2:  # (runs, T): one task
        a = a[:, None, :]
    if a.ndim != 3 or 0 in a.shape:
        raise ValueError(f"{name}: expected curves of shape (runs, tasks, T), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite scores")
    return a


def iqm_curves(
    curves: Mapping[str, np.ndarray],
    reps: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """IQM sample-efficiency curves with pointwise stratified-bootstrap intervals.

    ``curves``: method -> normalised scores ``(runs, tasks, T)`` at T common evaluation points (a 2-D
    array is ``(runs, T)`` of one task). Returns ``{method: (point, low, high)}``, each of shape ``(T,)``.
    """
    _check_bootstrap_args(reps, confidence)
    out = {}
    for method, c in curves.items():
        c = _as_curves(c, name=f"curves[{method!r}]")
        rng = rng_for(seed, method)
        runs, tasks, steps = c.shape
        # Gather straight into (T, batch, runs * tasks), contiguous, so the IQM's sort runs on the last axis.
        flat = np.ascontiguousarray(np.moveaxis(c, -1, 0)).reshape(steps, runs * tasks)
        chunk = max(1, _CHUNK_ELEMENTS // c.size)
        values = []
        for start in range(0, reps, chunk):
            b = min(chunk, reps - start)
            idx = rng.integers(0, runs, size=(b, runs, tasks)) * tasks + np.arange(tasks)
            values.append(iqm(flat[:, idx.reshape(b, runs * tasks), None]).T)  # (b, T)
        low, high = percentile_interval(np.concatenate(values, axis=0), confidence)
        out[method] = (np.asarray(iqm(np.moveaxis(c, -1, 0)), dtype=float), low, high)
    return out


def probability_of_improvement(
    scores: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]] | None = None,
    reps: int = 5_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[tuple[str, str], Interval]:
    """Probability of improvement P(X > Y) (ties count 1/2, averaged over tasks) with bootstrap intervals.

    ``scores``: method -> ``(runs, tasks)``; methods may have different run counts but need the same tasks.
    ``pairs``: ordered ``(x, y)`` pairs; default all ordered pairs of distinct methods. The runs of ``x`` and
    ``y`` are resampled independently within each task (rliable's ``StratifiedIndependentBootstrap``).
    """
    _check_bootstrap_args(reps, confidence)
    names = list(scores)
    if pairs is None:
        pairs = [(a, b) for a in names for b in names if a != b]
    out = {}
    for a, b in pairs:
        for m in (a, b):
            if m not in scores:
                raise KeyError(f"probability_of_improvement: no scores for method {m!r} (have {names})")
        x = as_scores(scores[a], name=f"scores[{a!r}]")
        y = as_scores(scores[b], name=f"scores[{b!r}]")
        values = stratified_bootstrap(_poi, [x, y], reps=reps, seed=rng_for(seed, a, b))
        low, high = percentile_interval(values, confidence)
        out[(a, b)] = Interval(float(_poi(x, y)), float(low), float(high))
    return out
