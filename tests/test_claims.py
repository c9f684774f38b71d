"""Claim verdicts on constructed studies whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from rlmu.stats.claims import CLAIMS, VERDICTS, StudyData, claims_table, evaluate_claims

EPOCHS = 30


def _runs(task, variant, finals, learn_epoch=10, noise=0.0, seed0=0):
    """Rows of runs whose return ramps linearly from 0 at epoch 1 to ``final`` at ``learn_epoch``."""
    rng = np.random.default_rng(abs(hash((task, variant))) % 2**32)
    rows = []
    for i, final in enumerate(finals):
        for e in range(1, EPOCHS + 1):
            ret = final * min(1.0, (e - 1) / max(learn_epoch - 1, 1))
            if e < EPOCHS and noise:
                ret = float(np.clip(ret + rng.normal(0, noise), 0, 100))
            rows.append(
                {
                    "task": task,
                    "variant": variant,
                    "seed": seed0 + i,
                    "epoch": e,
                    "env_steps": 1000 * e,
                    "eval_return_mean": ret,
                }
            )
    return rows


def _study(spec):
    rows = []
    for variant, kwargs in spec.items():
        rows += _runs("push", variant, **kwargs)
    return StudyData.from_table(pd.DataFrame(rows))


def _by_id(results):
    return {r.id: r for r in results}


def test_from_table_builds_groups_and_converged_flags():
    rows = _runs("push", "sac", [0.0, 30.0, 80.0])
    rows = [r for r in rows if not (r["seed"] == 2 and r["epoch"] > 20)]  # a shorter run
    study = StudyData.from_table(pd.DataFrame(rows))
    g = study.get("push", "sac")
    assert g.n == 3 and g.epochs == EPOCHS
    np.testing.assert_array_equal(g.converged, [False, True, True])
    np.testing.assert_allclose(g.final_score, [0.0, 0.3, 0.8])
    assert g.curves.shape == (20, 3)  # cut to the steps every run has
    with pytest.raises(ValueError, match="eval_return_mean"):
        StudyData.from_table(pd.DataFrame(rows).drop(columns="eval_return_mean"))
    custom = StudyData.from_table(pd.DataFrame(rows), converge_thresholds={"push": 50.0})
    np.testing.assert_array_equal(custom.get("push", "sac").converged, [False, False, True])


def test_clear_supported_case():
    n = 40
    study = _study(
        {
            "sac": dict(finals=[80.0] * 30 + [0.0] * 10, learn_epoch=25),  # 75% converge, learns late
            "rlv": dict(finals=[90.0] * 20 + [0.0] * 20, learn_epoch=5),  # 50%, learns fast
            "rlv_negreward": dict(finals=[0.0] * n),
            "rlv_reverse": dict(finals=[90.0] * 20 + [0.0] * 20, learn_epoch=5),
            "rlmu": dict(finals=[60.0] * 36 + [0.0] * 4),  # converges more, lower when converged
            "rlv_jitter5_half": dict(finals=[90.0] * 38 + [0.0] * 2),
            "rlv_jitter5": dict(finals=[90.0] * 10 + [0.0] * 30),
        }
    )
    res = _by_id(evaluate_claims(study, seed=0, reps=2_000, curve_reps=500))
    # Half of RLV's seeds fail, so its IQM (0.45) never reaches 80% of SAC's (0.8) (ratio inf), but
    # resamples with more converged RLV seeds do, and fast: the interval straddles 0.5.
    assert res["C1"].value == np.inf
    assert res["C1"].verdict == "inconclusive", res["C1"].detail
    assert res["C1"].interval[0] < 0.5 and res["C1"].seeds_needed is None  # unbounded interval
    assert res["C2"].verdict == "supported", res["C2"].detail  # 20/40: Wilson [0.35, 0.65]
    assert res["C3"].verdict == "inconclusive"  # [0.7, 0.8] needs hundreds of seeds
    assert res["C3"].seeds_needed > n
    # RLV at 50% with better converged runs caps P(RLMU > RLV) near 0.5: not a clear win
    assert res["C4"].value == pytest.approx(0.9 * 0.5 + 0.5 * 0.1 * 0.5)
    assert res["C4"].verdict == "inconclusive", res["C4"].detail
    assert res["C5"].verdict == "supported", res["C5"].detail
    assert res["C6"].verdict == "supported", res["C6"].detail
    assert res["C7"].verdict == "supported", res["C7"].detail  # 0/40: Wilson upper 0.088 < 0.1
    assert res["C8"].verdict == "not measured"
    for r in res.values():
        assert r.verdict in VERDICTS
        if r.verdict != "inconclusive":
            assert r.seeds_needed is None


def test_c1_supported_when_rlv_learns_faster():
    study = _study(
        {
            "sac": dict(finals=[80.0 + i for i in range(12)], learn_epoch=25),
            "rlv": dict(finals=[80.0 + i for i in range(12)], learn_epoch=6),
        }
    )
    c1 = _by_id(evaluate_claims(study, seed=0, reps=500, curve_reps=500))["C1"]
    assert c1.verdict == "supported", c1.detail
    # IQM curves are linear ramps reaching 0.8 * final at 80% of their learning time
    assert c1.value == pytest.approx((1 + 0.8 * 5) / (1 + 0.8 * 24), abs=0.06)
    assert c1.interval[1] < 0.5


def test_c4_supported_when_rlmu_converges_more_but_lower():
    rng = np.random.default_rng(0)
    study = _study(
        {
            "rlv": dict(finals=list(rng.uniform(85, 95, 12)) + [0.0] * 28),
            "rlmu": dict(finals=list(rng.uniform(50, 70, 38)) + [0.0] * 2),
        }
    )
    c4 = _by_id(evaluate_claims(study, seed=0, reps=2_000))["C4"]
    assert c4.verdict == "supported", c4.detail
    assert c4.extras["poi_converged"] == 0.0 and c4.extras["converged_rlv"] == 12


def test_clear_contradicted_case():
    study = _study(
        {
            "sac": dict(finals=[80.0] * 30, learn_epoch=5),  # 100%: contradicts C3
            "rlv": dict(finals=[80.0] * 30, learn_epoch=25),  # slower than SAC, always converges
            "rlv_negreward": dict(finals=[50.0] * 30),  # always converges
            "rlmu": dict(finals=[0.0] * 30),  # never beats RLV
            "rlv_reverse": dict(finals=[0.0] * 30),  # reverse breaks it
            "rlv_jitter5_half": dict(finals=[0.0] * 30),
            "rlv_jitter5": dict(finals=[80.0] * 30),
        }
    )
    res = _by_id(evaluate_claims(study, seed=0, reps=2_000, curve_reps=500))
    for cid in ("C1", "C2", "C3", "C4", "C5", "C6", "C7"):
        assert res[cid].verdict == "contradicted", (cid, res[cid].detail)
        assert res[cid].seeds_needed is None


def test_small_n_is_inconclusive_with_more_seeds_needed():
    study = _study(
        {
            "rlv": dict(finals=[80.0, 0.0, 0.0, 80.0]),
            "rlv_negreward": dict(finals=[0.0, 0.0, 0.0]),
            "rlv_reverse": dict(finals=[80.0, 0.0, 80.0, 0.0]),
        }
    )
    res = _by_id(evaluate_claims(study, seed=0, reps=2_000))
    for cid in ("C2", "C6", "C7"):
        assert res[cid].verdict == "inconclusive", (cid, res[cid].detail)
    assert res["C2"].seeds_needed > 4
    assert res["C7"].seeds_needed == 35  # smallest n with Wilson upper bound at 0/n below 0.1
    assert res["C6"].seeds_needed is None or res["C6"].seeds_needed > 4


def test_missing_variants_are_not_measured_and_named():
    study = _study({"sac": dict(finals=[80.0, 0.0, 80.0])})
    res = _by_id(evaluate_claims(study, reps=500))
    assert [r.id for r in evaluate_claims(study, reps=500)] == [c.id for c in CLAIMS]
    assert res["C1"].verdict == "not measured" and "rlv" in res["C1"].detail
    assert res["C3"].verdict != "not measured"
    assert "rlv_jitter5_half" in res["C5"].detail and "rlv_jitter5," not in res["C5"].detail + ","
    assert res["C8"].verdict == "not measured" and "virl_both" in res["C8"].detail
    table = claims_table(evaluate_claims(study, reps=500))
    assert list(table["id"]) == [c.id for c in CLAIMS]


def test_virl_claim_and_reproducibility():
    rows = []
    for task in ("push", "drawer"):
        rows += _runs(task, "virl_both", [70.0 + i for i in range(8)])
        rows += _runs(task, "virl_spatial", [20.0 + i for i in range(8)])
        rows += _runs(task, "virl_temporal", [30.0 + i for i in range(8)])
    study = StudyData.from_table(pd.DataFrame(rows))
    a = evaluate_claims(study, seed=3, reps=1_000)
    b = evaluate_claims(study, seed=3, reps=1_000)
    c8 = _by_id(a)["C8"]
    assert c8.verdict == "supported", c8.detail
    assert c8.statistic.endswith("temporal")  # the smaller difference binds
    both = np.array([[70.0 + i, (70.0 + i) / 2] for i in range(8)]) / 100  # runs x (push, drawer)
    temporal = np.array([[30.0 + i, (30.0 + i) / 2] for i in range(8)]) / 100
    assert c8.value == pytest.approx(
        scipy.stats.trim_mean(both, 0.25, axis=None) - scipy.stats.trim_mean(temporal, 0.25, axis=None)
    )
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]


def test_too_few_seeds_is_inconclusive_whatever_the_interval():
    # One seed per method with a clear effect (RLMU at the floor, RLV converged): the bootstrap interval
    # of P(RLMU > RLV) collapses to [0, 0], which alone would contradict C4.
    spec = {
        "sac": dict(finals=[80.0, 85.0]),  # 2/2 converged: alone this would not contradict [0.7, 0.8]
        "rlv": dict(finals=[80.0]),
        "rlmu": dict(finals=[0.0]),
        "rlv_reverse": dict(finals=[0.0]),
    }
    study = _study(spec)
    raw = _by_id(evaluate_claims(study, seed=0, reps=500, min_seeds=1))
    assert raw["C4"].verdict == "contradicted" and raw["C4"].interval == (0.0, 0.0)
    assert raw["C6"].verdict == "contradicted"
    res = _by_id(evaluate_claims(study, seed=0, reps=500))  # default floor: 5 seeds
    for cid in ("C1", "C2", "C3", "C4", "C6"):
        r = res[cid]
        assert r.verdict == "inconclusive", (cid, r.detail)
        assert r.seeds_needed is not None and r.seeds_needed >= 5, (cid, r.seeds_needed)
        assert "Too few seeds" in r.detail and "fewer than the 5 a verdict needs" in r.detail
    assert "the interval alone would say contradicted" in res["C4"].detail
    assert res["C4"].value == raw["C4"].value and res["C4"].interval == raw["C4"].interval
    # The floor is a parameter: at 5 seeds per group the same clear effect gets its verdict back.
    five = _study({"rlv": dict(finals=[80.0] * 5), "rlmu": dict(finals=[0.0] * 5)})
    c4 = _by_id(evaluate_claims(five, seed=0, reps=500))["C4"]
    assert c4.verdict == "contradicted" and c4.seeds_needed is None
    assert _by_id(evaluate_claims(five, seed=0, reps=500, min_seeds=6))["C4"].verdict == "inconclusive"
    with pytest.raises(ValueError, match="min_seeds"):
        evaluate_claims(five, min_seeds=0)
