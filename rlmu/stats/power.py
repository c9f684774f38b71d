"""How many seeds per group a comparison needs for 80% power at alpha = 0.05 (two-sided).

- Two proportions (convergence rates): normal approximation on arcsine-transformed rates (Cohen's effect
  size h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)); statsmodels ``NormalIndPower``). It is accurate for
  moderate n; Fisher's exact test at very small n has somewhat less power than this approximation.
- Two means (final scores, IQM): two-sample t-test at Cohen's d with pooled SD (statsmodels ``TTestIndPower``).
- One rate against a claimed region (e.g. "converges on 70-80% of seeds"): exact binomial enumeration of
  the probability that the Wilson (or exact Clopper-Pearson) interval lands inside (or wholly outside)
  the region; a difference of two rates: exact enumeration of Fisher's exact test over both counts.
- Any bootstrap interval: the 1/sqrt(n) scaling of its width (normal approximation), with every boundary
  of the region counted (an equivalence claim has two).
- Exact power saw-tooths in n: the answer is the smallest n from which every larger n reaches the power
  (``stable_threshold``), not the first n that happens to.
All functions return a ``PowerResult``; ``seeds_per_group`` is None with a ``reason`` when no finite number
of seeds resolves the question (no observed effect, a rate exactly on a boundary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.special
import scipy.stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from rlmu.stats.evidence import fisher_one_sided

__all__ = [
    "PowerResult",
    "cohens_d",
    "normal_power",
    "rate_difference_power",
    "rate_region_power",
    "seeds_for_interval",
    "seeds_for_means",
    "seeds_for_proportions",
    "seeds_for_rate_region",
    "stable_threshold",
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


def _z(alpha: float) -> float:
    return float(scipy.stats.norm.ppf(1 - alpha / 2))


def _bounds(region) -> tuple[float, float]:
    lo, hi = region
    return (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi))


def stable_threshold(power_of, power: float, n_min: int, n_max: int, monotone: bool = False):
    """Smallest ``n >= n_min`` from which every larger ``n`` (up to the check's reach) has
    ``power_of(n) >= power``, or None if there is none up to ``n_max``.

    Exact power of a discrete test saw-tooths in ``n`` (57 seeds can have 0.815 and 58 seeds 0.763), so
    the first ``n`` that reaches the target is not a safe answer. Non-monotone functions are scanned
    upward until the run of passing ``n`` is at least as long as the largest failing ``n`` seen (the
    answer is confirmed up to twice itself, and at least 32 further values); ``monotone`` ones are
    searched by doubling from ``n_min`` and then bisected.
    """
    n_min = max(1, int(n_min))
    if monotone:
        lo, hi = n_min - 1, n_min  # invariant once found: power_of(hi) passes, lo fails or is below range
        while power_of(hi) < power:
            if hi >= n_max:
                return None
            lo, hi = hi, min(2 * hi, n_max)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if power_of(mid) >= power:
                hi = mid
            else:
                lo = mid
        return hi
    if power_of(n_max) < power:  # no n whose every larger count passes can exist below n_max
        return None
    last_fail = n_min - 1
    n = n_min
    while n <= n_max:
        if power_of(n) < power:
            last_fail = n
        elif n - last_fail >= max(last_fail, 32):
            return last_fail + 1
        n += 1
    return None


def _exact_power(p: float, n: int, region, verdict: str, alpha: float) -> float:
    """``rate_region_power`` for the exact (Clopper-Pearson) interval: the counts giving a verdict form one
    or two runs of k, whose ends are found from the binomial tails at the region's bounds (a few scalar
    evaluations per n; the answer is searched over thousands of n)."""
    lo, hi = _bounds(region)
    q = alpha / 2

    def cdf(k, b):  # P(X <= k) at rate b
        return 0.0 if k < 0 else 1.0 if k >= n else float(scipy.special.bdtr(k, n, b))

    def z_guess(b, z):
        return int(math.floor(n * b + z * math.sqrt(max(n * b * (1 - b), 1e-12))))

    def first_above(b):  # smallest k with P(X >= k | b) < q: the interval lies above b
        if b <= 0.0:
            return 1
        k = min(max(z_guess(b, _z(alpha)), 0), n + 1)
        while k > 0 and 1.0 - cdf(k - 2, b) < q:
            k -= 1
        while k <= n and 1.0 - cdf(k - 1, b) >= q:
            k += 1
        return k

    def last_below(b):  # largest k with P(X <= k | b) < q: the interval lies below b
        if b >= 1.0:
            return n - 1
        k = min(max(z_guess(b, -_z(alpha)), -1), n)
        while k < n and cdf(k + 1, b) < q:
            k += 1
        while k >= 0 and cdf(k, b) >= q:
            k -= 1
        return k

    def mass(a, b):  # P(a <= X <= b) at the true rate
        return 0.0 if b < a else cdf(b, p) - cdf(a - 1, p)

    if verdict == "supported":
        return mass(first_above(lo) if np.isfinite(lo) else 0, last_below(hi) if np.isfinite(hi) else n)
    total = 0.0
    if np.isfinite(lo) and lo > 0:
        total += mass(0, last_below(lo))
    if np.isfinite(hi) and hi < 1:
        total += mass(first_above(hi), n)
    return total


def rate_region_power(
    p: float, n: int, region, verdict: str, alpha: float = 0.05, interval: str = "wilson"
) -> float:
    """Exact probability that ``n`` seeds with true rate ``p`` give the ``1 - alpha`` interval of the rate
    (``interval``: ``"wilson"`` or ``"exact"``, Clopper-Pearson) ``verdict`` ``"supported"`` (inside
    ``region``) or ``"contradicted"`` (wholly outside it)."""
    if interval == "exact":
        return _exact_power(p, n, region, verdict, alpha)
    lo, hi = _bounds(region)
    k = np.arange(n + 1)
    wl, wh = _wilson_bounds(k, n, _z(alpha))
    ok = (wl > lo) & (wh < hi) if verdict == "supported" else (wh < lo) | (wl > hi)
    return float(scipy.stats.binom.pmf(k, n, p)[ok].sum())


def seeds_for_rate_region(
    p: float,
    region: tuple[float | None, float | None],
    alpha: float = 0.05,
    power: float = 0.8,
    max_n: int = 5000,
    min_n: int = 1,
    interval: str = "wilson",
) -> PowerResult:
    """Seeds from which, if the true rate is ``p``, the (1 - alpha) interval (``interval``: ``"wilson"`` or
    ``"exact"``) lies inside ``region`` (p inside) or wholly outside it (p outside) with probability
    >= ``power`` at every larger count.

    ``region``: ``(lo, hi)``, None for an unbounded side; an edge at 0 or 1 is no boundary (a rate cannot
    fall beyond it). Exact binomial enumeration (``stable_threshold``: the smallest n from which every
    larger n reaches the power). ``min_n``: the verdict floor (no verdict below it). None, with the
    reason, if ``p`` is on a region boundary or more than ``max_n`` seeds would be needed.
    """
    _check(alpha, power)
    lo, hi = region
    lo = None if lo is not None and lo <= 0.0 else lo
    hi = None if hi is not None and hi >= 1.0 else hi
    method = f"one rate vs a claimed region, exact binomial enumeration of the {interval} interval"
    edges = [b for b in (lo, hi) if b is not None]
    if not edges:
        raise ValueError(f"region {region} covers every rate")
    dist = min(abs(p - b) for b in edges)
    if dist == 0:
        return PowerResult(None, 0.0, method, f"the rate {p:.3g} is on the region boundary {edges}")
    inside = (lo is None or p > lo) and (hi is None or p < hi)
    verdict = "supported" if inside else "contradicted"
    n = stable_threshold(
        lambda m: rate_region_power(p, m, (lo, hi), verdict, alpha, interval), power, min_n, max_n
    )
    if n is None:
        return PowerResult(None, dist, method, f"more than {max_n} seeds")
    return PowerResult(n, dist, method)


FISHER_EXACT_MAX_N = 150  # above this the power of Fisher's test is the arcsine normal approximation


def rate_difference_power(p1: float, p2: float, n: int, verdict_sign: str, alpha: float = 0.05) -> float:
    """Probability that rates ``p1``, ``p2`` observed on ``n`` seeds each make Fisher's exact test
    (one-sided at ``alpha / 2``, the scale of a two-sided ``1 - alpha`` interval) find rate 1
    ``"greater"`` or ``"less"`` (``verdict_sign``) than rate 2: exact enumeration over both binomial
    counts up to ``FISHER_EXACT_MAX_N`` seeds, the normal approximation on arcsine-transformed rates
    (Cohen's h) above, where the test's discreteness no longer matters."""
    if n > FISHER_EXACT_MAX_N:
        h = float(proportion_effectsize(p1, p2)) * (1 if verdict_sign == "greater" else -1)
        return float(scipy.stats.norm.cdf(h * math.sqrt(n / 2) - _z(alpha)))
    k = np.arange(n + 1)
    pval = fisher_one_sided(k[:, None], n, k[None, :], n, greater=verdict_sign == "greater")
    ok = (2.0 * pval < alpha).astype(float)
    return float(scipy.stats.binom.pmf(k, n, p1) @ ok @ scipy.stats.binom.pmf(k, n, p2))


def normal_power(theta: float, se, region, verdict: str, alpha: float = 0.05):
    """Probability that an estimate ``~ N(theta, se)`` with interval ``estimate +- z se`` gives
    ``verdict`` against ``region``: ``"supported"`` needs both ends inside (both boundaries count, as
    for an equivalence claim), ``"contradicted"`` the interval wholly beyond either boundary.
    ``se`` may be an array (one power per standard error)."""
    lo, hi = _bounds(region)
    z = _z(alpha)
    se_arr = np.asarray(se, dtype=float)
    safe = np.where(se_arr > 0, se_arr, 1.0)
    cdf = scipy.stats.norm.cdf
    inside = lo < theta < hi
    if verdict == "supported":
        a, b = lo + z * safe, hi - z * safe
        p = np.where(a < b, cdf((b - theta) / safe) - cdf((a - theta) / safe), 0.0)
        p = np.where(se_arr > 0, p, float(inside))
    else:
        p = cdf((lo - z * safe - theta) / safe) + 1.0 - cdf((hi + z * safe - theta) / safe)
        p = np.where(se_arr > 0, p, float(not inside and theta not in (lo, hi)))
    return float(p) if p.ndim == 0 else p


def seeds_for_interval(
    n: int,
    point: float,
    low: float,
    high: float,
    region: tuple[float | None, float | None],
    confidence: float = 0.95,
    power: float = 0.8,
    alpha: float | None = None,
    min_n: int = 1,
    max_n: int = 100_000,
) -> PowerResult:
    """Seeds per group for a bootstrap interval to resolve ``point`` against ``region`` (80% power).

    Normal approximation: the standard error is ``(high - low) / (2 z)`` at ``n`` seeds and shrinks as
    ``1/sqrt(n)``; the power is ``normal_power`` at that standard error, so a region with two boundaries
    (an equivalence claim) counts both. ``alpha``: the level of the verdict (default ``1 - confidence``;
    a smaller one for a claim in a Holm family). ``min_n``: the verdict floor.
    """
    _check(1 - confidence, power)
    alpha = 1 - confidence if alpha is None else alpha
    method = "bootstrap interval width scaled by 1/sqrt(n) (normal approximation)"
    lo, hi = _bounds(region)
    dist = min(abs(point - lo), abs(point - hi))
    if not np.isfinite(point) or dist == 0:
        return PowerResult(None, float(dist), method, f"the estimate {point:.3g} is on the region boundary")
    se = (high - low) / (2 * _z(1 - confidence))
    if not np.isfinite(se):
        return PowerResult(None, float(dist), method, "the interval is unbounded")
    verdict = "supported" if lo < point < hi else "contradicted"
    if se <= 0:
        return PowerResult(max(int(n), int(min_n)), float(dist), method, "the interval has zero width")
    n_found = stable_threshold(
        lambda m: normal_power(point, se * math.sqrt(n / m), region, verdict, alpha),
        power,
        min_n,
        max_n,
        monotone=True,
    )
    if n_found is None:
        return PowerResult(None, float(dist), method, f"more than {max_n} seeds")
    return PowerResult(max(2, n_found), float(dist), method)
