"""rlmu.stats metrics and bootstrap: hand-computed values, shapes, reproducibility, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from rlmu.stats import (
    AGGREGATES,
    Interval,
    aggregate_intervals,
    iqm,
    iqm_curves,
    mean,
    median,
    metrics,
    optimality_gap,
    performance_profiles,
    probability_of_improvement,
)


def test_hand_computed_aggregates():
    x = np.array([[0.0, 1.0], [0.2, 0.6], [0.4, 0.8], [10.0, -5.0]])  # 4 runs x 2 tasks
    # IQM: 8 scores, cut int(0.25*8)=2 at each end: sorted -5,0,.2,.4,.6,.8,1,10 -> mean(.2,.4,.6,.8)
    assert iqm(x) == pytest.approx(0.5)
    assert mean(x) == pytest.approx(np.mean([10.6 / 4, -2.6 / 4]))
    assert median(np.array([[0.0, 1.0, 0.5]])) == pytest.approx(0.5)
    # optimality gap clips at gamma: min(x, 1) = 0,1,.2,.6,.4,.8,1,-5 -> mean -1/8
    assert optimality_gap(x) == pytest.approx(1 - (-1.0 / 8))
    assert iqm(np.array([0.3, 0.1, 0.2])) == pytest.approx(0.2)  # 1-D = one task, 3 runs: no cut


def test_probability_of_improvement_hand_computed():
    x = np.array([[1.0], [0.0]])
    y = np.array([[0.0], [0.5]])
    # pairs: (1>0) (1>.5) (0=0 -> 1/2) (0<.5): (1 + 1 + .5 + 0) / 4
    assert metrics.probability_of_improvement(x, y) == pytest.approx(0.625)


def test_reproducible_and_seed_dependent():
    rng = np.random.default_rng(0)
    scores = {"a": rng.random((6, 2)), "b": rng.random((6, 2))}
    one = aggregate_intervals(scores, reps=2_000, seed=11)
    two = aggregate_intervals(scores, reps=2_000, seed=11)
    other = aggregate_intervals(scores, reps=2_000, seed=12)
    assert one == two
    assert one != other
    assert set(one["a"]) == set(AGGREGATES)
    # a method's intervals do not depend on which other methods are in the study
    alone = aggregate_intervals({"b": scores["b"]}, reps=2_000, seed=11)
    assert alone["b"] == one["b"]
    p1 = probability_of_improvement(scores, reps=500, seed=1)
    assert p1 == probability_of_improvement(scores, reps=500, seed=1)
    assert set(p1) == {("a", "b"), ("b", "a")}
    assert p1[("a", "b")].point == pytest.approx(1 - p1[("b", "a")].point)


def test_intervals_contain_point_and_shrink_with_runs():
    rng = np.random.default_rng(1)
    small = aggregate_intervals({"m": rng.random((5, 1))}, reps=4_000)["m"]["Mean"]
    large = aggregate_intervals({"m": rng.random((80, 1))}, reps=4_000)["m"]["Mean"]
    assert isinstance(small, Interval)
    for iv in (small, large):
        assert iv.low <= iv.point <= iv.high
    assert (large.high - large.low) < (small.high - small.low) / 2


def test_constant_scores_have_zero_width():
    iv = aggregate_intervals({"m": np.full((5, 3), 0.7)}, reps=200)["m"]
    for v in iv.values():
        assert v.low == pytest.approx(v.high)


def test_curve_and_profile_shapes():
    rng = np.random.default_rng(2)
    curves = {"a": rng.random((5, 2, 7)), "b": rng.random((4, 7))}  # (runs, T) is one task
    out = iqm_curves(curves, reps=300, seed=0)
    for m in curves:
        point, low, high = out[m]
        assert point.shape == low.shape == high.shape == (7,)
        assert np.all(low <= point + 1e-12) and np.all(point <= high + 1e-12)
    np.testing.assert_allclose(out["a"][0], [iqm(curves["a"][..., t]) for t in range(7)])
    taus = np.linspace(0, 1, 5)
    prof = performance_profiles({"a": rng.random((5, 2))}, taus, reps=300)
    point, low, high = prof["a"]
    assert point.shape == (5,) and np.all(np.diff(point) <= 0)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match=r"scores\['m'\].*NaN"):
        aggregate_intervals({"m": np.array([[np.nan, 1.0]])}, reps=10)
    with pytest.raises(ValueError, match="shape"):
        aggregate_intervals({"m": np.zeros((0, 2))}, reps=10)
    with pytest.raises(ValueError, match="reps"):
        aggregate_intervals({"m": np.ones((3, 1))}, reps=0)
    with pytest.raises(ValueError, match="curves"):
        iqm_curves({"m": np.ones(5)}, reps=10)
    with pytest.raises(KeyError, match="'z'"):
        probability_of_improvement({"a": np.ones((3, 1))}, pairs=[("a", "z")], reps=10)


def test_iqm_propagates_nan_like_rliable():
    # the IQM dropped a NaN score through its trim; every metric now returns NaN
    x = np.array([[0.1], [0.2], [np.nan], [0.4], [0.5]])
    for name, f in AGGREGATES.items():
        assert np.isnan(f(x)), name
    batch = np.stack([np.arange(8.0).reshape(8, 1), np.r_[np.arange(7.0), np.nan].reshape(8, 1)])
    out = iqm(batch)
    assert out[0] == pytest.approx(3.5) and np.isnan(out[1])
    big = np.r_[np.arange(300.0), np.nan]  # the partition path (more than 256 scores)
    assert np.isnan(iqm(big)) and iqm(np.arange(300.0)) == pytest.approx(149.5)


def test_one_run_has_no_interval():
    # a 1-seed method showed a zero-width "95% CI"
    one = {"m": np.array([[0.4]]), "k": np.array([[0.1], [0.5], [0.9]])}
    iv = aggregate_intervals(one, reps=200)
    for v in iv["m"].values():
        assert np.isnan(v.low) and np.isnan(v.high) and not np.isnan(v.point)
    assert not np.isnan(iv["k"]["Mean"].low)
    poi = probability_of_improvement(one, reps=200)
    assert np.isnan(poi[("m", "k")].low) and np.isnan(poi[("m", "k")].p_value)
    _, low, high = iqm_curves({"m": np.ones((1, 4))}, reps=50)["m"]
    assert np.isnan(low).all() and np.isnan(high).all()
    _, low, _ = performance_profiles({"m": np.ones((1, 1))}, np.linspace(0, 1, 3), reps=50)["m"]
    assert np.isnan(low).all()


def test_probability_of_improvement_from_counts_is_exact():
    from rlmu.stats.bootstrap import draw_counts, poi_from_counts

    rng = np.random.default_rng(3)
    x, y = rng.choice([0.0, 0.2, 0.5, 1.0], 9), rng.choice([0.0, 0.5, 0.7, 1.0], 6)
    ix, iy = rng.integers(0, 9, size=(40, 9)), rng.integers(0, 6, size=(40, 11))  # any resample size
    got = poi_from_counts(x, y, draw_counts(ix, 9), draw_counts(iy, 6))
    want = [metrics.probability_of_improvement(x[ix[i]], y[iy[i]]) for i in range(40)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_probability_of_improvement_mirrors_and_has_a_p_value():
    rng = np.random.default_rng(4)
    scores = {"a": rng.random((12, 2)), "b": rng.random((9, 2)) + 0.3}
    out = probability_of_improvement(scores, reps=3_000, seed=2)
    ab, ba = out[("a", "b")], out[("b", "a")]
    assert ab.point == pytest.approx(1 - ba.point)
    assert (ab.low, ab.high) == pytest.approx((1 - ba.high, 1 - ba.low))
    assert ab.p_value == pytest.approx(ba.p_value) and ab.p_value < 0.05
    # a pair's interval does not depend on which other methods are in the study
    alone = probability_of_improvement(
        scores | {"c": rng.random((5, 2))}, pairs=[("a", "b")], reps=3_000, seed=2
    )
    assert alone[("a", "b")] == ab


def test_probability_of_improvement_memory_is_bounded():
    # 40 vs 40 seeds at 50,000 repetitions peaked at 0.92 GB, growing with the square of
    # the seed count; resample counts and cumulative sums keep it to chunks of a few tens of MB
    import tracemalloc

    rng = np.random.default_rng(5)
    for n in (40, 100):
        scores = {"a": rng.random((n, 1)), "b": rng.random((n, 1))}
        tracemalloc.start()
        probability_of_improvement(scores, pairs=[("a", "b")], reps=50_000)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 200e6, (n, peak)
