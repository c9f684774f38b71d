"""How many seeds per group a comparison needs for 80% power at alpha = 0.05 (two-sided).

- Two proportions (convergence rates): normal approximation on arcsine-transformed rates (Cohen's effect
  size h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)); statsmodels ``NormalIndPower``). It is accurate for
  moderate n; Fisher's exact test at very small n has somewhat less power than this approximation.
- Two means (final scores, IQM): two-sample t-test at Cohen's d with pooled SD (statsmodels ``TTestIndPower``).
- One rate against a claimed region (e.g. "converges on 70-80% of seeds"): exact binomial enumeration of
  the probability that the Wilson interval lands inside (or wholly outside) the region.
- Any bootstrap interval: the 1/sqrt(n) scaling of its width (normal approximation).
All functions return a ``PowerResult``; ``seeds_per_group`` is None with a ``reason`` when no finite number
of seeds resolves the question (no observed effect, a rate exactly on a boundary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

__all__ = [
    "PowerResult",
    "cohens_d",
    "seeds_for_interval",
    "seeds_for_means",
    "seeds_for_proportions",
    "seeds_for_rate_region",
]


@dataclass(frozen=True)
class PowerResult:
    seeds_per_group: int | None  # None: no finite number of seeds (see reason)
    effect_size: float  # Cohen's h, Cohen's d, or the distance used (see method)
    method: str
    reason: str = ""


def _check(alpha: float, power: float) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1), got alpha={alpha}, power={power}")


def seeds_for_proportions(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> PowerResult:
    """Seeds per group to detect rates ``p1`` vs ``p2`` (two-sided, normal approximation, Cohen's h)."""
    _check(alpha, power)
    for name, p in (("p1", p1), ("p2", p2)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a rate in [0, 1], got {p}")
    h = float(proportion_effectsize(p1, p2))
    method = "two proportions, normal approximation on arcsine rates (Cohen's h)"
    if h == 0:
        return PowerResult(None, 0.0, method, "equal rates: no number of seeds detects a zero difference")
    n = NormalIndPower().solve_power(effect_size=abs(h), alpha=alpha, power=power, ratio=1.0)
    return PowerResult(max(2, math.ceil(float(n))), h, method)


def cohens_d(x, y) -> float:
    """Cohen's d = (mean x - mean y) / pooled SD (ddof 1). inf when both groups are constant and differ."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.size < 2 or y.size < 2:
        raise ValueError(f"cohens_d needs at least 2 values per group, got {x.size} and {y.size}")
    diff = x.mean() - y.mean()
    pooled = ((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (x.size + y.size - 2)
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return float(diff / math.sqrt(pooled))


def seeds_for_means(d: float, alpha: float = 0.05, power: float = 0.8) -> PowerResult:
    """Seeds per group for a two-sample t-test to detect standardised effect ``d`` (Cohen's d)."""
    _check(alpha, power)
    method = "two-sample t-test (Cohen's d, pooled SD)"
    if d == 0 or not np.isfinite(d) and np.isnan(d):
        return PowerResult(None, float(d), method, "no observed difference in means")
    if not np.isfinite(d):
        return PowerResult(2, float(d), method, "zero within-group variance: any difference is detected")
    n = TTestIndPower().solve_power(effect_size=abs(d), alpha=alpha, power=power, ratio=1.0)
    return PowerResult(max(2, math.ceil(float(n))), float(d), method)


def _wilson_bounds(k: np.ndarray, n: int, z: float) -> tuple[np.ndarray, np.ndarray]:
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.where(k == 0, 0.0, centre - half), np.where(k == n, 1.0, centre + half)


def seeds_for_rate_region(
    p: float, region: tuple[float, float], alpha: float = 0.05, power: float = 0.8, max_n: int = 5000
) -> PowerResult:
    """Smallest number of seeds for which, if the true rate is ``p``, the Wilson (1 - alpha) interval lies
    inside ``region`` (p inside) or wholly outside it (p outside) with probability >= ``power``.

    Exact binomial enumeration; the probability saw-tooths in n, and the first n that reaches ``power`` is
    returned. None if ``p`` is on a region boundary or more than ``max_n`` seeds would be needed.
    """
    _check(alpha, power)
    lo, hi = region
    method = "one rate vs a claimed region, exact binomial enumeration of the Wilson interval"
    inside = lo <= p <= hi
    # A region edge at 0 or 1 is no boundary: a rate cannot fall beyond it.
    edges = [b for b in (lo, hi) if 0.0 < b < 1.0]
    if not edges:
        raise ValueError(f"region {region} covers every rate")
    dist = min(abs(p - b) for b in edges)
    if dist == 0:
        return PowerResult(None, 0.0, method, f"the rate {p:.3g} is on the region boundary")
    z = scipy.stats.norm.ppf(1 - alpha / 2)
    for n in range(1, max_n + 1):
        k = np.arange(n + 1)
        wl, wh = _wilson_bounds(k, n, z)
        ok = (wl >= lo) & (wh <= hi) if inside else (wh < lo) | (wl > hi)
        if scipy.stats.binom.pmf(k, n, p)[ok].sum() >= power:
            return PowerResult(n, dist, method)
    return PowerResult(None, dist, method, f"more than {max_n} seeds")


def seeds_for_interval(
    n: int,
    point: float,
    low: float,
    high: float,
    region: tuple[float, float],
    confidence: float = 0.95,
    power: float = 0.8,
) -> PowerResult:
    """Seeds per group for a bootstrap interval to resolve ``point`` against ``region`` (80% power).

    Normal approximation: the standard error is ``(high - low) / (2 z)`` at ``n`` seeds and shrinks as
    ``1/sqrt(n)``; the effect is the distance from ``point`` to the nearest region boundary; the answer is
    ``n * ((z_{1-a/2} + z_{power}) * se / distance)^2``.
    """
    _check(1 - confidence, power)
    method = "bootstrap interval width scaled by 1/sqrt(n) (normal approximation)"
    lo, hi = region
    dist = min(abs(point - lo), abs(point - hi))
    if not np.isfinite(point) or dist == 0:
        return PowerResult(None, float(dist), method, f"the estimate {point:.3g} is on the region boundary")
    z = scipy.stats.norm.ppf(0.5 + confidence / 2)
    se = (high - low) / (2 * z)
    if not np.isfinite(se):
        return PowerResult(None, float(dist), method, "the interval is unbounded")
    if se <= 0:
        return PowerResult(int(n), float(dist), method, "the interval has zero width")
    need = n * ((z + scipy.stats.norm.ppf(power)) * se / dist) ** 2
    return PowerResult(max(2, math.ceil(need)), float(dist), method)
