"""Every estimate of rlmu.stats against rliable (the reference implementation) on fixed small data.

Point estimates must agree to floating-point precision. Interval ends come from different random draws, so
they are compared in probability: rliable's end must sit at the right quantile level of our own bootstrap
distribution. The level of a percentile estimated from B draws has standard error sqrt(q(1-q)/B) (the
count below it is binomial), whatever the statistic; we allow 4.5 combined standard errors. Discrete
bootstrap distributions (few runs) have atoms, so the level of a value is a range [P(X < v), P(X <= v)].
"""

from __future__ import annotations

import numpy as np
import pytest

rliable_library = pytest.importorskip("rliable.library")
rliable_metrics = pytest.importorskip("rliable.metrics")

from rlmu.stats import bootstrap, metrics, profiles  # noqa: E402

RELIABLE_REPS = 3_000
OUR_REPS = 20_000
Q = 0.025


def _scores():
    rng = np.random.default_rng(123)
    return {
        "a": rng.beta(2, 2, size=(8, 3)),
        "b": np.clip(rng.normal(0.6, 0.2, size=(8, 3)), 0, 1),
        "c": rng.choice([0.0, 0.0, 0.3, 1.0], size=(8, 3)),  # many ties, like converged / failed runs
    }


def _level_tolerance(b_ref: int, b_ours: int, q: float = Q) -> float:
    return 4.5 * np.sqrt(q * (1 - q) / b_ref + q * (1 - q) / b_ours)


def _assert_at_level(values: np.ndarray, end: float, q: float, tol: float, what: str):
    """``end`` (an interval end from rliable) lies at quantile level ``q`` of ``values`` within ``tol``."""
    below = float(np.mean(values < end - 1e-12))
    upto = float(np.mean(values <= end + 1e-12))
    assert below - tol <= q <= upto + tol, (
        f"{what}: rliable end {end} is at level [{below}, {upto}], want {q}"
    )


def rliable_reference_intervals(scores, func, reps, seed=0):
    np.random.seed(seed)  # rliable draws from numpy's global generator and ignores random_state
    return rliable_library.get_interval_estimates(scores, func, reps=reps)


RLIABLE_FUNCS = {
    "IQM": rliable_metrics.aggregate_iqm,
    "Mean": rliable_metrics.aggregate_mean,
    "Median": rliable_metrics.aggregate_median,
    "Optimality Gap": rliable_metrics.aggregate_optimality_gap,
}


@pytest.mark.parametrize("name", list(RLIABLE_FUNCS))
def test_point_estimates_match_rliable(name):
    rng = np.random.default_rng(5)
    for shape in [(10, 1), (7, 4), (5, 9), (13, 2)]:
        x = rng.normal(0.5, 0.4, size=shape)
        assert np.isclose(metrics.AGGREGATES[name](x), RLIABLE_FUNCS[name](x), rtol=1e-12, atol=1e-12)


def test_batched_metrics_equal_per_sample():
    x = np.random.default_rng(6).random((4, 3, 7, 5))
    for name, f in metrics.AGGREGATES.items():
        batched = f(x)
        assert batched.shape == (4, 3)
        loop = np.array([[RLIABLE_FUNCS[name](x[i, j]) for j in range(3)] for i in range(4)])
        np.testing.assert_allclose(batched, loop, rtol=1e-12, err_msg=name)


def test_probability_of_improvement_point_matches_rliable():
    rng = np.random.default_rng(7)
    x = rng.choice([0.0, 0.2, 0.5, 1.0], size=(9, 3))
    y = rng.choice([0.0, 0.5, 1.0], size=(6, 3))
    assert np.isclose(
        metrics.probability_of_improvement(x, y), rliable_metrics.probability_of_improvement(x, y)
    )
    assert metrics.probability_of_improvement(x, x) == 0.5


@pytest.mark.parametrize("name", list(RLIABLE_FUNCS))
def test_aggregate_intervals_match_rliable(name):
    scores = _scores()
    ours = bootstrap.aggregate_intervals(
        scores, metrics={name: metrics.AGGREGATES[name]}, reps=OUR_REPS, seed=1
    )
    points, cis = rliable_reference_intervals(
        scores, lambda x: np.array([RLIABLE_FUNCS[name](x)]), RELIABLE_REPS
    )
    tol = _level_tolerance(RELIABLE_REPS, OUR_REPS)
    for m, x in scores.items():
        assert np.isclose(ours[m][name].point, points[m][0])
        values = bootstrap.stratified_bootstrap(metrics.AGGREGATES[name], [x], reps=OUR_REPS, seed=2)
        _assert_at_level(values, cis[m][0, 0], Q, tol, f"{name} {m} low")
        _assert_at_level(values, cis[m][1, 0], 1 - Q, tol, f"{name} {m} high")
        # and our own interval ends are the percentiles of our distribution (up to resampling noise)
        _assert_at_level(values, ours[m][name].low, Q, _level_tolerance(OUR_REPS, OUR_REPS), f"ours {m} low")


def test_probability_of_improvement_intervals_match_rliable():
    scores = _scores()
    pairs = [("a", "b"), ("c", "a")]
    ours = bootstrap.probability_of_improvement(scores, pairs=pairs, reps=OUR_REPS, seed=3)
    pair_dict = {f"{a},{b}": [scores[a], scores[b]] for a, b in pairs}
    points, cis = rliable_reference_intervals(
        pair_dict, rliable_metrics.probability_of_improvement, RELIABLE_REPS
    )
    tol = _level_tolerance(RELIABLE_REPS, OUR_REPS)
    for a, b in pairs:
        key = f"{a},{b}"
        assert np.isclose(ours[(a, b)].point, points[key])
        values = bootstrap.stratified_bootstrap(
            metrics.probability_of_improvement, [scores[a], scores[b]], reps=OUR_REPS, seed=4
        )
        _assert_at_level(values, float(np.ravel(cis[key][0])[0]), Q, tol, f"PoI {key} low")
        _assert_at_level(values, float(np.ravel(cis[key][1])[0]), 1 - Q, tol, f"PoI {key} high")


def test_performance_profiles_match_rliable():
    scores = _scores()
    taus = np.linspace(0.0, 1.0, 11)
    reps = 2_000
    ours = profiles.performance_profiles(scores, taus, reps=OUR_REPS, seed=5)
    np.random.seed(0)
    points, cis = rliable_library.create_performance_profile(scores, taus, reps=reps)
    tol = _level_tolerance(reps, OUR_REPS)
    for m, x in scores.items():
        np.testing.assert_allclose(ours[m][0], points[m])
        values = bootstrap.stratified_bootstrap(
            lambda s: profiles.score_distribution(s, taus), [x], reps=OUR_REPS, seed=6
        )
        for k in range(len(taus)):
            _assert_at_level(values[:, k], cis[m][0, k], Q, tol, f"profile {m} tau={taus[k]} low")
            _assert_at_level(values[:, k], cis[m][1, k], 1 - Q, tol, f"profile {m} tau={taus[k]} high")


def test_average_score_profile_point_matches_rliable():
    x = _scores()["b"]
    taus = np.linspace(0, 1, 7)
    np.testing.assert_allclose(
        profiles.average_score_distribution(x, taus), rliable_library.average_score_distributions(x, taus)
    )


def test_iqm_curves_match_rliable():
    rng = np.random.default_rng(8)
    steps = 6
    # runs x tasks x T: noisy rising curves
    curves = {"a": np.clip(np.linspace(0, 1, steps) + rng.normal(0, 0.2, size=(7, 2, steps)), 0, 1)}
    ours = bootstrap.iqm_curves(curves, reps=OUR_REPS, seed=9)

    def iqm_per_step(x):
        return np.array([rliable_metrics.aggregate_iqm(x[..., t]) for t in range(x.shape[-1])])

    reps = 2_000
    points, cis = rliable_reference_intervals(curves, iqm_per_step, reps)
    np.testing.assert_allclose(ours["a"][0], points["a"])
    tol = _level_tolerance(reps, OUR_REPS)
    c = curves["a"]
    for t in range(steps):
        values = bootstrap.stratified_bootstrap(metrics.iqm, [c[..., t]], reps=OUR_REPS, seed=10)
        _assert_at_level(values, cis["a"][0, t], Q, tol, f"curve low t={t}")
        _assert_at_level(values, cis["a"][1, t], 1 - Q, tol, f"curve high t={t}")
        # our curve's ends are the same percentiles, from whole-curve resampling
        _assert_at_level(values, ours["a"][1][t], Q, _level_tolerance(OUR_REPS, OUR_REPS), f"ours low t={t}")
        _assert_at_level(
            values, ours["a"][2][t], 1 - Q, _level_tolerance(OUR_REPS, OUR_REPS), f"ours high t={t}"
        )
