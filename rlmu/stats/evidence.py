"""From an estimate to a verdict: intervals, the p-values they invert to, region tests and Holm's correction.

Every statistic a claim uses is summarised as *evidence*: a point estimate, its two-sided ``confidence``
interval (95% by default), and two p-values for any boundary ``b``:

- ``p_greater(b)``: evidence that the true value is above ``b`` (null: it is ``<= b``);
- ``p_less(b)``: evidence that it is below ``b``.

Both are on the two-sided scale of the interval: ``p_greater(b) < 1 - confidence`` exactly when the
interval lies wholly above ``b`` (one tail of ``(1 - confidence) / 2``). So an unadjusted verdict read
from the p-values is the verdict read from the interval, and the p-values can be adjusted for multiple
comparisons (Holm) where an interval cannot.

Three kinds of evidence:

- ``RateEvidence``: a convergence rate ``k/n``; Wilson score interval with the score test's p-values
  (which it inverts exactly), or Clopper-Pearson's exact interval with the exact binomial test's.
- ``RateDifferenceEvidence``: ``k1/n1 - k2/n2``; Newcombe's hybrid score interval is shown, Fisher's
  exact test gives the p-values (they guarantee their level; Newcombe's interval does not at 10 seeds).
- ``BootstrapEvidence``: any statistic with a bootstrap distribution; percentile interval (rliable's), or
  BCa (bias-corrected and accelerated, Efron 1987) where ``docs/statistics.md`` measured it closer to
  its nominal coverage. The p-values invert the same interval: ``2 * F(b)`` for the percentile interval
  (``F``: the bootstrap distribution's CDF, counting replicates equal to ``b`` against the evidence), the
  BCa-adjusted level for BCa.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.stats

from rlmu.stats.convergence import newcombe_difference, wilson_interval

__all__ = [
    "ALPHA",
    "BootstrapEvidence",
    "RateDifferenceEvidence",
    "RateEvidence",
    "clopper_pearson",
    "fisher_one_sided",
    "holm",
    "region_pvalues",
]

ALPHA = 0.05  # two-sided level of every interval and verdict (95% intervals)


def _norm_cdf(z: float) -> float:
    return float(scipy.stats.norm.cdf(z))


def clopper_pearson(k: int, n: int, confidence: float = 1 - ALPHA) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a rate ``k / n``: the rates the exact binomial test does not
    reject at ``1 - confidence`` (two-sided, each tail ``(1 - confidence) / 2``)."""
    a = (1.0 - confidence) / 2
    low = 0.0 if k == 0 else float(scipy.stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(scipy.stats.beta.ppf(1 - a, k + 1, n - k))
    return low, high


@dataclass(frozen=True)
class RateEvidence:
    """A rate ``k / n``. ``method="wilson"``: Wilson interval and score-test p-values (which it inverts);
    ``"exact"``: Clopper-Pearson interval and exact binomial-test p-values (which it inverts). The exact
    test never exceeds its level; at 10 seeds the Wilson interval misses one side 7% of the time at a true
    rate of 0.1 (``docs/statistics.md``), so the claims use the exact one."""

    k: int
    n: int
    method: str = "wilson"
    confidence: float = 1 - ALPHA

    @property
    def point(self) -> float:
        return self.k / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        if self.method == "exact":
            return clopper_pearson(self.k, self.n, self.confidence) if self.n else (0.0, 1.0)
        _, low, high = wilson_interval(self.k, self.n, self.confidence)
        return low, high

    def _z(self, b: float) -> float:
        # score statistic at the null rate b (the Wilson interval is the set of b with |z| <= z_crit)
        return (self.k / self.n - b) / math.sqrt(b * (1 - b) / self.n)

    def p_greater(self, b: float) -> float:
        if self.n == 0:
            return 1.0
        if b <= 0.0:
            return 0.0 if self.k > 0 else 1.0
        if b >= 1.0:
            return 1.0
        if self.method == "exact":  # P(X >= k) at rate b
            return min(1.0, 2.0 * float(scipy.stats.binom.sf(self.k - 1, self.n, b)))
        return min(1.0, 2.0 * (1.0 - _norm_cdf(self._z(b))))

    def p_less(self, b: float) -> float:
        if self.n == 0:
            return 1.0
        if b >= 1.0:
            return 0.0 if self.k < self.n else 1.0
        if b <= 0.0:
            return 1.0
        if self.method == "exact":  # P(X <= k) at rate b
            return min(1.0, 2.0 * float(scipy.stats.binom.cdf(self.k, self.n, b)))
        return min(1.0, 2.0 * _norm_cdf(self._z(b)))


def fisher_one_sided(k1, n1: int, k2, n2: int, greater: bool = True):
    """One-sided p-value of Fisher's exact test that rate 1 is greater (``greater``) or smaller than rate
    2: the hypergeometric tail of ``k1`` given the margins. Vectorised over ``k1``, ``k2``."""
    k1, k2 = np.asarray(k1), np.asarray(k2)
    if greater:
        return scipy.stats.hypergeom.sf(k1 - 1, n1 + n2, k1 + k2, n1)
    return scipy.stats.hypergeom.cdf(k1, n1 + n2, k1 + k2, n1)


@dataclass(frozen=True)
class RateDifferenceEvidence:
    """A difference of rates ``k1/n1 - k2/n2``: Newcombe's interval, and p-values from Fisher's exact test
    (METHODS section 4; one-sided, doubled to the interval's scale) for the boundary 0. Fisher's test never
    exceeds its level, which the Newcombe interval does at 10 seeds; the interval is shown, the test
    decides. Only the boundary 0 (equal rates) is supported."""

    k1: int
    n1: int
    k2: int
    n2: int
    confidence: float = 1 - ALPHA

    @property
    def point(self) -> float:
        return newcombe_difference(self.k1, self.n1, self.k2, self.n2, self.confidence)[0]

    @property
    def interval(self) -> tuple[float, float]:
        _, low, high = newcombe_difference(self.k1, self.n1, self.k2, self.n2, self.confidence)
        return low, high

    def _p(self, b: float, greater: bool) -> float:
        if b != 0:
            raise ValueError("RateDifferenceEvidence tests the boundary 0 (equal rates) only")
        if self.n1 == 0 or self.n2 == 0:
            return 1.0
        return min(1.0, 2.0 * float(fisher_one_sided(self.k1, self.n1, self.k2, self.n2, greater)))

    def p_greater(self, b: float) -> float:
        return self._p(b, greater=True)

    def p_less(self, b: float) -> float:
        return self._p(b, greater=False)


@dataclass(frozen=True)
class BootstrapEvidence:
    """A statistic with its bootstrap distribution.

    ``replicates``: the bootstrap values ``(B,)`` (may hold +-inf, never NaN). ``method``: ``"percentile"``
    or ``"bca"``; BCa needs ``jackknife``: one array of leave-one-out values of the statistic per resampled
    group (Efron & Tibshirani 1993, sec. 14.3; for several groups the influence values are pooled).
    """

    point: float
    replicates: np.ndarray = field(repr=False)
    method: str = "percentile"
    jackknife: tuple[np.ndarray, ...] = field(default=(), repr=False)
    confidence: float = 1 - ALPHA

    def __post_init__(self):
        reps = np.sort(np.asarray(self.replicates, dtype=float).ravel())
        if reps.size == 0 or np.isnan(reps).any():
            raise ValueError("BootstrapEvidence: replicates must be non-empty and free of NaN")
        if self.method not in ("percentile", "bca"):
            raise ValueError(f"BootstrapEvidence: method must be 'percentile' or 'bca', got {self.method!r}")
        object.__setattr__(self, "replicates", reps)
        z0, accel = 0.0, 0.0
        if self.method == "bca":
            z0, accel = self._bca_constants()
        object.__setattr__(self, "_z0", z0)
        object.__setattr__(self, "_accel", accel)

    def _bca_constants(self) -> tuple[float, float]:
        reps, b = self.replicates, self.replicates.size
        if reps[0] == reps[-1] or not np.isfinite(self.point):
            return 0.0, 0.0  # a point distribution: BCa has nothing to correct
        # mid-rank share of replicates below the estimate (ties count one half: atoms are common here)
        below = (np.searchsorted(reps, self.point, "left") + np.searchsorted(reps, self.point, "right")) / 2
        z0 = float(scipy.stats.norm.ppf(min(max(below / b, 0.5 / b), 1 - 0.5 / b)))
        num = den = 0.0
        for jack in self.jackknife:
            j = np.asarray(jack, dtype=float)
            if j.size < 2 or not np.all(np.isfinite(j)):
                return z0, 0.0
            u = (j.size - 1) * (j.mean() - j)
            num += float((u**3).sum())
            den += float((u**2).sum())
        accel = num / (6.0 * den**1.5) if den > 0 else 0.0
        return z0, accel

    def _level(self, q: float) -> float:
        """Quantile level of the distribution that serves as the interval end at nominal level ``q``."""
        if self.method == "percentile":
            return q
        z0, a = self._z0, self._accel
        w = z0 + float(scipy.stats.norm.ppf(q))
        return _norm_cdf(z0 + w / (1.0 - a * w))

    @property
    def interval(self) -> tuple[float, float]:
        alpha = 1.0 - self.confidence
        # inverted_cdf: the ratio statistic can be inf, where linear interpolation is undefined
        method = "linear" if np.all(np.isfinite(self.replicates[[0, -1]])) else "inverted_cdf"
        low, high = np.quantile(
            self.replicates, [self._level(alpha / 2), self._level(1 - alpha / 2)], method=method
        )
        return float(low), float(high)

    def _p_tail(self, share: float, upper: bool) -> float:
        """Two-sided p-value from the share of replicates on the far side of a boundary: below it for
        ``p_greater`` (the lower tail), above it for ``p_less`` (``upper``)."""
        if self.method == "percentile" or share <= 0.0 or share >= 1.0:
            return min(1.0, 2.0 * share)
        # invert _level: the nominal level q at which the interval end sits on the boundary
        z0, a = self._z0, self._accel
        v = float(scipy.stats.norm.ppf(1.0 - share if upper else share)) - z0
        q = _norm_cdf(v / (1.0 + a * v) - z0)
        return min(1.0, 2.0 * (1.0 - q if upper else q))

    def p_greater(self, b: float) -> float:
        share = float(np.searchsorted(self.replicates, b, "right")) / self.replicates.size
        return self._p_tail(share, upper=False)

    def p_less(self, b: float) -> float:
        n = self.replicates.size
        return self._p_tail(float(n - np.searchsorted(self.replicates, b, "left")) / n, upper=True)


def region_pvalues(evidence, region: tuple[float | None, float | None]) -> tuple[float, float]:
    """``(p_support, p_contradict)`` of the claim "the true value lies in ``region``".

    ``region``: ``(lo, hi)``, None for an unbounded side; the bounds themselves are outside the region.
    Supported: the interval lies inside (above ``lo`` and below ``hi``: an intersection-union test, the
    larger p-value). Contradicted: the interval lies wholly outside, below ``lo`` or above ``hi`` (the
    smaller p-value; at most one side can be small, each has a tail of ``alpha / 2``, so the test has
    level ``alpha``).
    """
    lo, hi = region
    support, contra = [], []
    if lo is not None:
        support.append(evidence.p_greater(lo))
        contra.append(evidence.p_less(lo))
    if hi is not None:
        support.append(evidence.p_less(hi))
        contra.append(evidence.p_greater(hi))
    if not support:
        raise ValueError("region_pvalues: the region has no bound")
    return max(support), min(contra)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN entries are not tested: they stay NaN and do not count).

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))`` for ``m`` tested
    hypotheses; rejecting where the adjusted value is below ``alpha`` controls the family-wise error rate
    at ``alpha`` under any dependence.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = tested.size
    running = 0.0
    for rank, i in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()
