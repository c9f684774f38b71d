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
  Python call per repetition. The probability of improvement is computed from resample counts and
  cumulative sums over the sorted runs (``O(runs_x + runs_y)`` per repetition, not ``O(runs_x * runs_y)``),
  so its memory does not grow with the square of the seed count.
- A method with a single run has no sampling distribution: its interval is ``[nan, nan]``, not the
  zero-width interval a bootstrap of one value would give (the same for a pair where either side has one
  run, a curve and a profile).
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
    "draw_counts",
    "poi_bootstraps",
    "poi_from_counts",
    "probability_of_improvement",
    "rng_for",
    "strata_bootstrap",
    "stratified_bootstrap",
    "two_sided_p",
]

# Elements of resampled data held in memory at once (float64: 8 bytes each -> 32 MiB).
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval ``[low, high]``."""

    point: float
    low: float
    high: float
    # Two-sided bootstrap p-value of "no difference" where the statistic has a null value (the probability
    # of improvement: 0.5); None for aggregate metrics.
    p_value: float | None = None

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


def _index_chunks(shapes: Sequence[tuple[int, int]], reps: int, rng: np.random.Generator, per_rep: int):
    """Yield lists of resampling indices, one ``(chunk, runs_i, tasks_i)`` array per ``(runs_i, tasks_i)``
    in ``shapes``, ``reps`` rows in total; ``per_rep`` elements of work per repetition bound the chunk."""
    chunk = max(1, _CHUNK_ELEMENTS // max(per_rep, 1))
    done = 0
    while done < reps:
        c = min(chunk, reps - done)
        yield [rng.integers(0, runs, size=(c, runs, tasks)) for runs, tasks in shapes]
        done += c


def _resample_chunks(arrays: Sequence[np.ndarray], reps: int, rng: np.random.Generator):
    """Yield tuples of resampled arrays, each ``(chunk, runs_i, tasks, ...)``, ``reps`` rows in total.

    Every array is ``(runs_i, tasks, ...)``; its runs are redrawn with replacement within each task.
    """
    shapes = [a.shape[:2] for a in arrays]
    for idx in _index_chunks(shapes, reps, rng, sum(a.size for a in arrays)):
        yield tuple(a[i, np.arange(a.shape[1])] for a, i in zip(arrays, idx, strict=True))


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


def strata_bootstrap(
    statistic: Callable[..., np.ndarray],
    groups: Sequence[Sequence[np.ndarray]],
    reps: int,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Bootstrap distribution of ``statistic`` over groups made of strata of different sizes.

    ``groups``: one sequence per group of stratum arrays ``(runs_s, ...)`` (a stratum is a task; tasks may
    have different numbers of runs). In every repetition each stratum's runs are redrawn with replacement,
    independently, and a group's resample is its strata concatenated along the run axis. ``statistic`` is
    called with one ``(batch, sum_s runs_s, ...)`` array per group and returns ``(batch, ...)``; the result
    is ``(reps, ...)``. With one stratum per group this is ``stratified_bootstrap``'s scheme.
    """
    _check_bootstrap_args(reps, 0.5)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    groups = [[np.asarray(a, dtype=float) for a in g] for g in groups]
    shapes = [(a.shape[0], 1) for g in groups for a in g]
    per_rep = sum(a.size for g in groups for a in g)
    parts = []
    for idx in _index_chunks(shapes, int(reps), rng, per_rep):
        it = iter(idx)
        batch = [np.concatenate([a[next(it)[:, :, 0]] for a in g], axis=1) for g in groups]
        parts.append(np.asarray(statistic(*batch)))
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
        for (sample,) in _resample_chunks([x], int(reps) if x.shape[0] > 1 else 1, rng):
            for m, f in metrics.items():
                values[m].append(np.asarray(f(sample), dtype=float))
        out[method] = {}
        for m, f in metrics.items():
            low, high = percentile_interval(np.concatenate(values[m]), confidence)
            if x.shape[0] == 1:
                low = high = np.nan
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
        if runs == 1:
            low = high = np.full(steps, np.nan)
        out[method] = (np.asarray(iqm(np.moveaxis(c, -1, 0)), dtype=float), low, high)
    return out


def draw_counts(idx: np.ndarray, runs: int) -> np.ndarray:
    """Resampling indices ``(chunk, runs_drawn)`` -> how often each run was drawn, ``(runs, chunk)``.

    Runs first: the cumulative sums and row gathers below then work on contiguous rows.
    """
    c = idx.shape[0]
    flat = (idx * c + np.arange(c)[:, None]).ravel()
    return np.bincount(flat, minlength=c * runs).reshape(runs, c)


def poi_from_counts(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) of one task for resamples given by counts: ``x`` (rx,), ``y`` (ry,) scores,
    ``wx`` (rx, c), ``wy`` (ry, c) draw counts -> (c,). A resample may have any size (the counts' sums).

    The sum over pairs of ``wx_i wy_j [1 if x_i > y_j, 1/2 if equal]``: for each ``x_i`` the weight of the
    ``y`` below it (and tied with it) is a cumulative sum of ``wy`` over the sorted ``y``, read at the
    ``searchsorted`` positions of ``x_i``. Integer arithmetic throughout, so the result is exact.
    """
    order = np.argsort(y, kind="stable")
    ys = y[order]
    cum = np.zeros((y.size + 1, wy.shape[1]), dtype=np.int64)
    np.cumsum(wy[order], axis=0, out=cum[1:])
    twice = np.take(cum, np.searchsorted(ys, x, "left"), axis=0)
    twice += np.take(cum, np.searchsorted(ys, x, "right"), axis=0)
    return 0.5 * np.einsum("ic,ic->c", wx, twice) / (wx.sum(axis=0) * wy.sum(axis=0))


def poi_bootstraps(
    scores: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    reps: int,
    seed: int | None = 0,
    rngs: Mapping[str, np.random.Generator] | None = None,
) -> dict[tuple[str, str], np.ndarray]:
    """Bootstrap distributions ``(reps,)`` of P(X > Y) for each ``(x, y)`` in ``pairs``.

    ``scores``: method -> ``(runs, tasks)`` finite scores. Every method is resampled once per repetition
    from its own stream (``rng_for(seed, "poi", method)``, or ``rngs[method]``), its runs redrawn within
    each task, and that resample serves every pair it is in: the two sides of a pair are independent, and
    on every repetition P(Y > X) = 1 - P(X > Y) exactly. Memory per repetition is ``O(runs)`` per method,
    not ``O(runs_x * runs_y)`` per pair.
    """
    methods = list(dict.fromkeys(m for p in pairs for m in p))
    arrays = {m: np.asarray(scores[m], dtype=float) for m in methods}
    gens = {m: (rngs[m] if rngs is not None else rng_for(seed, "poi", m)) for m in methods}
    per_rep = 4 * sum((a.shape[0] + 1) * a.shape[1] for a in arrays.values())
    chunk = max(1, _CHUNK_ELEMENTS // per_rep)
    out: dict[tuple[str, str], list[np.ndarray]] = {p: [] for p in pairs}
    done = 0
    while done < reps:
        c = min(chunk, reps - done)
        counts = {}
        for m, a in arrays.items():
            runs, tasks = a.shape
            idx = gens[m].integers(0, runs, size=(c, runs, tasks))
            counts[m] = [draw_counts(idx[:, :, t], runs) for t in range(tasks)]
        for a, b in pairs:
            x, y = arrays[a], arrays[b]
            tasks = x.shape[1]
            v = sum(poi_from_counts(x[:, t], y[:, t], counts[a][t], counts[b][t]) for t in range(tasks))
            out[(a, b)].append(v / tasks)
        done += c
    return {p: np.concatenate(v) for p, v in out.items()}


def two_sided_p(values: np.ndarray, null: float) -> float:
    """Bootstrap p-value of ``null`` against the distribution ``values``: twice the smaller tail, the
    tail counting values equal to ``null`` (so an atom at the null value is never evidence), at most 1.
    This is the percentile interval inverted: the ``1 - p`` interval has ``null`` on its boundary."""
    v = np.asarray(values, dtype=float)
    return float(min(1.0, 2.0 * min(np.mean(v <= null), np.mean(v >= null))))


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
    ``y`` are resampled independently within each task (rliable's ``StratifiedIndependentBootstrap``);
    each method has its own stream (``poi_bootstraps``), so a pair's interval does not depend on which
    other methods are in the study, and the interval of ``(y, x)`` is that of ``(x, y)`` mirrored.
    Each ``Interval`` carries ``p_value``: the bootstrap p-value of P(X > Y) = 0.5 (``two_sided_p``). A
    pair where either method has one run has no interval (NaN ends and p-value).
    """
    _check_bootstrap_args(reps, confidence)
    names = list(scores)
    if pairs is None:
        pairs = [(a, b) for a in names for b in names if a != b]
    arrays = {}
    for a, b in pairs:
        for m in (a, b):
            if m not in scores:
                raise KeyError(f"probability_of_improvement: no scores for method {m!r} (have {names})")
            if m not in arrays:
                arrays[m] = as_scores(scores[m], name=f"scores[{m!r}]")
        if arrays[a].shape[1] != arrays[b].shape[1]:
            raise ValueError(
                f"probability_of_improvement: {a!r} has {arrays[a].shape[1]} tasks, {b!r} has "
                f"{arrays[b].shape[1]}"
            )
    resampled = [(a, b) for a, b in pairs if min(arrays[a].shape[0], arrays[b].shape[0]) > 1]
    values = poi_bootstraps(arrays, resampled, int(reps), seed) if resampled else {}
    out = {}
    for a, b in pairs:
        point = float(_poi(arrays[a], arrays[b]))
        if (a, b) not in values:
            out[(a, b)] = Interval(point, np.nan, np.nan, np.nan)
            continue
        low, high = percentile_interval(values[(a, b)], confidence)
        out[(a, b)] = Interval(point, float(low), float(high), two_sided_p(values[(a, b)], 0.5))
    return out
