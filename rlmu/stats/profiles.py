"""Performance profiles (score distributions) with stratified-bootstrap bands, as rliable's
``create_performance_profile``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rlmu.stats.bootstrap import _check_bootstrap_args, percentile_interval, rng_for, stratified_bootstrap
from rlmu.stats.metrics import as_scores

__all__ = ["performance_profiles", "score_distribution", "average_score_distribution"]


def score_distribution(x, taus) -> np.ndarray:
    """Fraction of all run x task scores strictly above each tau: ``(..., runs, tasks)`` -> ``(..., K)``."""
    a = np.asarray(x, dtype=float)
    flat = a.reshape(*a.shape[:-2], -1)
    return (flat[..., :, None] > np.asarray(taus, dtype=float)).mean(axis=-2)


def average_score_distribution(x, taus) -> np.ndarray:
    """Fraction of tasks whose mean score over runs is strictly above each tau -> ``(..., K)``."""
    task_means = np.asarray(x, dtype=float).mean(axis=-2)
    return (task_means[..., :, None] > np.asarray(taus, dtype=float)).mean(axis=-2)


def performance_profiles(
    scores: Mapping[str, np.ndarray],
    taus,
    reps: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
    use_score_distribution: bool = True,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Performance profiles at thresholds ``taus`` (K,) with pointwise percentile bands.

    ``scores``: method -> normalised scores ``(runs, tasks)``. With ``use_score_distribution`` (rliable's
    default) the profile is the run-score distribution, else the distribution of per-task mean scores.
    Returns ``{method: (point, low, high)}``, each ``(K,)``; a method with one run has NaN bands.
    """
    _check_bootstrap_args(reps, confidence)
    taus = np.asarray(taus, dtype=float).ravel()
    if taus.size == 0:
        raise ValueError("performance_profiles: taus is empty")
    f = score_distribution if use_score_distribution else average_score_distribution
    out = {}
    for method, x in scores.items():
        x = as_scores(x, name=f"scores[{method!r}]")
        values = stratified_bootstrap(lambda s: f(s, taus), [x], reps=reps, seed=rng_for(seed, method))
        low, high = percentile_interval(values, confidence)
        if x.shape[0] == 1:  # one run: no sampling distribution (rlmu.stats.bootstrap)
            low = high = np.full(taus.size, np.nan)
        out[method] = (f(x, taus), low, high)
    return out
