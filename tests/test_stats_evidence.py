"""From intervals to verdicts: the p-values each kind of evidence inverts to, Holm's correction, and the
exact power calculations (``rlmu.stats.evidence``, ``rlmu.stats.power``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.multitest import multipletests

from rlmu.stats.evidence import (
    BootstrapEvidence,
    RateDifferenceEvidence,
    RateEvidence,
    clopper_pearson,
    holm,
    region_pvalues,
)
from rlmu.stats.power import rate_difference_power, rate_region_power, stable_threshold

GRID = np.linspace(0.01, 0.99, 99)


@pytest.mark.parametrize("method", ["wilson", "exact"])
@pytest.mark.parametrize("k,n", [(0, 12), (3, 10), (5, 10), (12, 12), (30, 40)])
def test_rate_p_values_invert_the_interval(method, k, n):
    ev = RateEvidence(k, n, method=method)
    low, high = ev.interval
    for b in GRID:
        assert (low > b) == (ev.p_greater(b) < 0.05), (b, low, ev.p_greater(b))
        assert (high < b) == (ev.p_less(b) < 0.05), (b, high, ev.p_less(b))


def test_clopper_pearson_textbook():
    # 0/10: upper bound 1 - 0.025^(1/10) = 0.3085; 7/10: [0.3475, 0.9333]
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025**0.1))
    assert clopper_pearson(7, 10) == (pytest.approx(0.3475, abs=1e-4), pytest.approx(0.9333, abs=1e-4))


def test_rate_difference_uses_fisher():
    ev = RateDifferenceEvidence(9, 10, 3, 10)
    one_sided = scipy.stats.fisher_exact([[9, 1], [3, 7]], alternative="greater").pvalue
    assert ev.p_greater(0) == pytest.approx(min(1, 2 * one_sided))
    assert ev.p_less(0) == pytest.approx(1.0)
    assert ev.point == pytest.approx(0.6)
    with pytest.raises(ValueError, match="boundary 0"):
        ev.p_greater(0.1)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_p_values_invert_the_interval(method):
    rng = np.random.default_rng(0)
    reps = rng.gamma(3.0, 0.1, 20_000)  # skewed
    ev = BootstrapEvidence(0.28, reps, method=method, jackknife=(rng.normal(0, 1, 12) ** 3,))
    low, high = ev.interval
    assert ev.p_greater(low - 1e-9) == pytest.approx(0.05, abs=2e-3)
    assert ev.p_less(high + 1e-9) == pytest.approx(0.05, abs=2e-3)
    for b in np.linspace(0.0, 0.9, 91):
        if abs(b - low) > 1e-3:
            assert (low > b) == (ev.p_greater(b) < 0.05), b
        if abs(b - high) > 1e-3:
            assert (high < b) == (ev.p_less(b) < 0.05), b
    # an atom at the boundary is no evidence
    atom = BootstrapEvidence(0.5, np.full(1_000, 0.5))
    assert atom.p_greater(0.5) == 1.0 and atom.p_less(0.5) == 1.0


def test_region_pvalues():
    ev = RateEvidence(20, 40, method="exact")
    support, contra = region_pvalues(ev, (0.3, 0.7))
    assert support == max(ev.p_greater(0.3), ev.p_less(0.7)) and support < 0.05
    assert contra == min(ev.p_less(0.3), ev.p_greater(0.7))
    assert region_pvalues(ev, (None, 0.1)) == (ev.p_less(0.1), ev.p_greater(0.1))


def test_holm_matches_statsmodels():
    p = [0.01, 0.04, 0.03, 0.2, 0.001]
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])
    out = holm([0.02, np.nan, 0.03])
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.04) and out[2] == pytest.approx(0.04)


def test_exact_powers_match_enumeration():
    # Clopper-Pearson region power by brute force over every count
    for p, n, region, verdict in [
        (0.5, 30, (0.3, 0.7), "supported"),
        (0.2, 25, (None, 0.1), "contradicted"),
        (0.95, 40, (0.7, 0.8), "contradicted"),
    ]:
        lo, hi = (-np.inf if region[0] is None else region[0]), region[1]
        want = 0.0
        for k in range(n + 1):
            low, high = clopper_pearson(k, n)
            ok = (low > lo and high < hi) if verdict == "supported" else (high < lo or low > hi)
            want += ok * scipy.stats.binom.pmf(k, n, p)
        assert rate_region_power(p, n, region, verdict, interval="exact") == pytest.approx(want, abs=1e-12)
    # Fisher's exact test power by brute force
    n, want = 8, 0.0
    for k1 in range(n + 1):
        for k2 in range(n + 1):
            pv = scipy.stats.fisher_exact([[k1, n - k1], [k2, n - k2]], alternative="greater").pvalue
            want += (2 * pv < 0.05) * scipy.stats.binom.pmf(k1, n, 0.8) * scipy.stats.binom.pmf(k2, n, 0.3)
    assert rate_difference_power(0.8, 0.3, n, "greater") == pytest.approx(want, abs=1e-12)


def test_stable_threshold():
    saw = {n: (0.9 if n % 7 else 0.5) for n in range(1, 200)}  # fails every 7th n below 100
    f = lambda n: saw[n] if n < 100 else 0.9  # noqa: E731
    assert stable_threshold(f, 0.8, 1, 199) == 99
    assert stable_threshold(lambda n: n / 100, 0.8, 1, 1000, monotone=True) == 80
    assert stable_threshold(lambda n: 0.5, 0.8, 1, 1000) is None
