"""Convergence rates, Fisher's exact test and seed-count power calculations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.power import NormalIndPower

from rlmu.stats import convergence_table, fisher_exact, pairwise_fisher, wilson_interval
from rlmu.stats.convergence import newcombe_difference
from rlmu.stats.power import (
    cohens_d,
    seeds_for_interval,
    seeds_for_means,
    seeds_for_proportions,
    seeds_for_rate_region,
)


def test_wilson_hand_computed():
    # k=5, n=10, z=1.959964: centre = (0.5 + z^2/20) / (1 + z^2/10) = 0.5,
    # half = z * sqrt(0.025 + z^2/400) / (1 + z^2/10) = 0.2366
    p, low, high = wilson_interval(5, 10)
    assert p == 0.5
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    # k=0: the interval is [0, z^2 / (n + z^2)]
    z2 = scipy.stats.norm.ppf(0.975) ** 2
    assert wilson_interval(0, 10) == (0.0, 0.0, pytest.approx(z2 / (10 + z2)))
    assert wilson_interval(10, 10)[2] == 1.0
    # 7/10 (the textbook example, Newcombe 1998 table I: 0.3968-0.8922)
    _, low, high = wilson_interval(7, 10)
    assert (low, high) == (pytest.approx(0.3968, abs=1e-4), pytest.approx(0.8922, abs=1e-4))


def test_wilson_empty_and_bad_counts():
    p, low, high = wilson_interval(0, 0)
    assert math.isnan(p) and (low, high) == (0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(4, 3)
    with pytest.raises(ValueError):
        wilson_interval(1.5, 3)


def test_fisher_exact_against_hand_value():
    # 3/3 vs 0/3: only the observed table and its mirror are as extreme; each has probability 1/C(6,3)
    assert fisher_exact(3, 3, 0, 3) == pytest.approx(2 / 20)
    assert fisher_exact(8, 10, 2, 10) == pytest.approx(scipy.stats.fisher_exact([[8, 2], [2, 8]]).pvalue)
    assert fisher_exact(5, 10, 5, 10) == pytest.approx(1.0)
    assert fisher_exact(0, 0, 3, 5) == 1.0


def test_newcombe_difference_textbook():
    # Newcombe (1998) table II example (a): 56/70 - 48/80, method 10 interval 0.0524 to 0.3339
    d, low, high = newcombe_difference(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (low, high) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))


def test_convergence_table_and_pairwise():
    finals = {"sac": np.array([0, 10, 20, 0, 5.0]), "rlv": np.array([0, 0, 0, 0, 30.0])}
    t = convergence_table(finals, threshold=0.0)
    assert list(t.columns) == ["method", "converged", "n", "rate", "low", "high"]
    assert t.set_index("method").loc["sac", "converged"] == 3
    assert t.set_index("method").loc["rlv", "rate"] == pytest.approx(0.2)
    pw = pairwise_fisher(t)
    assert len(pw) == 1 and pw.loc[0, "p_value"] == pytest.approx(fisher_exact(3, 5, 1, 5))
    with pytest.raises(ValueError, match="'rlv'"):
        convergence_table({"rlv": np.array([np.nan, 1.0])}, 0.0)


def test_power_textbook_values():
    # Cohen (1988): two-sample t-test, alpha .05 two-sided, power .8: d=0.5 -> 64, d=0.8 -> 26 per group
    assert seeds_for_means(0.5).seeds_per_group == 64
    assert seeds_for_means(0.8).seeds_per_group == 26
    # Cohen's h for proportions: h=0.5 -> 63 per group (n = 2 * ((z_.975 + z_.8) / h)^2 = 62.8)
    p1 = 0.5
    p2 = math.sin(math.asin(math.sqrt(p1)) + 0.25) ** 2  # h = 0.5
    r = seeds_for_proportions(p2, p1)
    assert r.seeds_per_group == 63 and r.effect_size == pytest.approx(0.5)
    none = seeds_for_proportions(0.5, 0.5)
    assert none.seeds_per_group is None and "equal" in none.reason
    assert NormalIndPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8) == pytest.approx(
        62.79, abs=0.01
    )


def test_cohens_d_and_degenerate_effects():
    assert cohens_d([1, 2, 3], [1, 2, 3]) == 0.0
    assert cohens_d([2, 3, 4], [1, 2, 3]) == pytest.approx(1.0)
    assert cohens_d([1, 1], [0, 0]) == math.inf
    assert seeds_for_means(0.0).seeds_per_group is None
    assert seeds_for_means(math.inf).seeds_per_group == 2


def test_rate_region_and_interval_scaling():
    # 0 successes: the Wilson upper bound z^2/(n+z^2) first falls below 0.1 at n = 35
    assert seeds_for_rate_region(0.0, (0.0, 0.1)).seeds_per_group == 35
    assert seeds_for_rate_region(0.7, (0.7, 0.8)).seeds_per_group is None
    # interval scaling: se = 0.1 at n = 10, distance 0.1: n * (2.8016 * 1)^2 = 78.5 -> 79
    r = seeds_for_interval(10, 0.6, 0.6 - 0.196, 0.6 + 0.196, (0.5, math.inf))
    assert r.seeds_per_group == math.ceil(
        10
        * (scipy.stats.norm.ppf(0.975) + scipy.stats.norm.ppf(0.8)) ** 2
        * (0.196 / scipy.stats.norm.ppf(0.975) / 0.1) ** 2
    )
