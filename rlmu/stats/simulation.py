"""Simulated studies with a known truth: the error rates and power of the claims' verdicts, and the coverage
of the intervals behind them (``docs/statistics.md`` reports both; ``tests/test_verdicts_simulation.py``
checks them).

A simulated study is made of ``GroupData`` built from arrays (no run directories): final scores drawn
from a zero-inflated distribution (a seed converges with probability ``p_converge`` and then scores
around ``plateau``; otherwise it scores 0, the task minimum) and, for the sample-efficiency claim, ramp
learning curves. Verdicts come from the real routine, ``rlmu.stats.claims.evaluate_claims``, one claim at a
time (so the claim is its own Holm family, as the acceptance criteria state them).

``python -m rlmu.stats.simulation`` prints the coverage table of ``docs/statistics.md``, ``--verdicts`` its
tables of false-verdict rates and power.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats

from rlmu.stats.bootstrap import poi_bootstraps, strata_bootstrap
from rlmu.stats.claims import CLAIMS_BY_ID, GroupData, StudyData, evaluate_claims, seeds_needed
from rlmu.stats.evidence import BootstrapEvidence
from rlmu.stats.metrics import iqm, mean
from rlmu.stats.metrics import probability_of_improvement as poi

__all__ = [
    "EFFECTS",
    "NULLS",
    "Scores",
    "group",
    "pilot_study",
    "representative_study",
    "simulate_verdicts",
    "verdict_rates",
]

EPOCHS = 50  # evaluation points of simulated curves
STEPS_PER_EPOCH = 1000


@dataclass(frozen=True)
class Scores:
    """A variant's true distribution of final scores (normalised), and how fast it learns.

    ``p_converge``: probability that a seed converges; a converged seed scores ``plateau + sd * N(0, 1)``
    clipped to [0.01, 1], the others 0. ``learn``: the epoch at which a converged seed's ramp reaches its
    plateau is ``learn * U(1 - learn_spread, 1 + learn_spread)`` (for curve claims). ``dist``: ``"zi"``
    (zero-inflated, as above) or ``"logit"`` (every seed converges, score = sigmoid(loc + N(0, 1)): a
    continuous distribution whose probability of improvement over another is set through ``loc``).
    """

    p_converge: float = 0.7
    plateau: float = 0.8
    sd: float = 0.08
    learn: float = 20.0
    learn_spread: float = 0.4
    dist: str = "zi"
    loc: float = 0.0

    def draw(self, rng: np.random.Generator, size) -> tuple[np.ndarray, np.ndarray]:
        """(final scores, converged flags), each of shape ``size``."""
        if self.dist == "logit":
            z = self.loc + rng.standard_normal(size)
            return 1.0 / (1.0 + np.exp(-z)), np.ones(size, dtype=bool)
        conv = rng.random(size) < self.p_converge
        score = np.clip(self.plateau + self.sd * rng.standard_normal(size), 0.01, 1.0)
        return np.where(conv, score, 0.0), conv

    def quantiles(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """A representative sample of ``n`` seeds: the distribution's quantiles at (i + 0.5) / n, so its
        estimates are the truth's (its converged share is ``round(p n) / n``)."""
        u = (np.arange(n) + 0.5) / n
        if self.dist == "logit":
            z = self.loc + scipy.stats.norm.ppf(u)
            return 1.0 / (1.0 + np.exp(-z)), np.ones(n, dtype=bool)
        k = int(round(self.p_converge * n))
        score = np.clip(self.plateau + self.sd * scipy.stats.norm.ppf((np.arange(k) + 0.5) / k), 0.01, 1.0)
        return np.concatenate([np.zeros(n - k), score]), np.arange(n) >= n - k


def ramp_curves(finals: np.ndarray, learn: np.ndarray, epochs: int = EPOCHS) -> np.ndarray:
    """(T, n) curves rising linearly from 0 at epoch 1 to each seed's final score at epoch ``learn``."""
    t = np.arange(1, epochs + 1, dtype=float)[:, None]
    return finals[None, :] * np.clip((t - 1) / np.maximum(learn[None, :] - 1, 1e-9), 0.0, 1.0)


def group(
    variant: str,
    finals,
    converged=None,
    task: str = "push",
    curves: np.ndarray | None = None,
    epochs: int = EPOCHS,
) -> GroupData:
    """A ``GroupData`` from arrays: ``finals`` (n,) normalised final scores; ``converged`` (default: score
    above 0); ``curves`` (T, n) at steps 1000, 2000, ... (default: flat at the final score)."""
    finals = np.asarray(finals, dtype=float)
    conv = finals > 0 if converged is None else np.asarray(converged, dtype=bool)
    if curves is None:
        curves = np.repeat(finals[None, :], epochs, axis=0)
    steps = STEPS_PER_EPOCH * np.arange(1, curves.shape[0] + 1, dtype=float)
    return GroupData(task, variant, np.arange(finals.size), finals, conv, steps, curves, curves.shape[0])


def _draw_group(rng, variant: str, spec: Scores, n: int, task: str, with_curves: bool) -> GroupData:
    finals, conv = spec.draw(rng, n)
    curves = None
    if with_curves:
        spread = spec.learn_spread
        curves = ramp_curves(finals, spec.learn * rng.uniform(1 - spread, 1 + spread, size=n))
    return group(variant, finals, conv, task, curves)


def representative_study(specs: dict[str, Scores], n: int, task: str = "push", with_curves=False):
    """A study whose estimates equal the truth: every variant's quantile sample (learning times at their
    quantiles too)."""
    groups = {}
    for v, spec in specs.items():
        finals, conv = spec.quantiles(n)
        curves = None
        if with_curves:
            learn = spec.learn * (1 - spec.learn_spread + 2 * spec.learn_spread * (np.arange(n) + 0.5) / n)
            # learning time and plateau are independent in the truth: pair their quantiles at random
            # (a fixed pairing, so the study is the same every time)
            curves = ramp_curves(finals, learn[np.random.default_rng(n).permutation(n)])
        groups[(task, v)] = group(v, finals, conv, task, curves)
    return StudyData(groups)


def pilot_study(specs: dict[str, Scores], n: int, rng_seed: int = 0, with_curves=False) -> StudyData:
    """A large random study (``n`` seeds per variant) from the truth: its observed effect is the truth up
    to ``1/sqrt(n)``, so the "seeds needed" it gives is the figure for the true effect."""
    rng = np.random.default_rng(rng_seed)
    return StudyData(
        {("push", v): _draw_group(rng, v, spec, n, "push", with_curves) for v, spec in specs.items()}
    )


# ------------------------------------------------------------------------------------------ scenarios

_ZI = Scores(p_converge=0.6)  # a variant that converges on 60% of its seeds
_ZI9 = Scores(p_converge=0.9)
# P(X > Y) = Phi(loc / sqrt 2) for X = sigmoid(N(loc, 1)), Y = sigmoid(N(0, 1)): loc for the bound 0.36
_LOC_036 = float(np.sqrt(2) * scipy.stats.norm.ppf(0.36))

# Truths on a claim's boundary (or, for comparisons, methods identical in truth): every verdict there is
# false. (claim, label, variant -> Scores)
NULLS: list[tuple[str, str, dict[str, Scores]]] = [
    (
        "C1",
        "RLV exactly twice as fast (ratio 0.5)",
        {
            "sac": Scores(p_converge=1.0, learn=39.75, learn_spread=0.0),
            "rlv": Scores(p_converge=1.0, learn=19.75, learn_spread=0.0),
        },
    ),
    ("C2", "rate 0.3", {"rlv": Scores(p_converge=0.3)}),
    ("C2", "rate 0.7", {"rlv": Scores(p_converge=0.7)}),
    ("C3", "rate 0.7", {"sac": Scores(p_converge=0.7)}),
    ("C3", "rate 0.8", {"sac": Scores(p_converge=0.8)}),
    ("C4", "identical, 60% converge", {"rlmu": _ZI, "rlv": _ZI}),
    ("C4", "identical, 90% converge", {"rlmu": _ZI9, "rlv": _ZI9}),
    ("C5", "identical rates 0.6", {"rlv_jitter5_half": _ZI, "rlv": _ZI, "rlv_jitter5": _ZI}),
    ("C6", "identical, 60% converge", {"rlv_reverse": _ZI, "rlv": _ZI}),
    (
        "C6",
        "P(reverse > RLV) = 0.36",
        {"rlv_reverse": Scores(dist="logit", loc=_LOC_036), "rlv": Scores(dist="logit")},
    ),
    ("C7", "rate 0.1", {"rlv_negreward": Scores(p_converge=0.1)}),
    ("C8", "identical, 60% converge", {"virl_both": _ZI, "virl_spatial": _ZI, "virl_temporal": _ZI}),
    ("C8", "identical, 90% converge", {"virl_both": _ZI9, "virl_spatial": _ZI9, "virl_temporal": _ZI9}),
]

# True effects of the size each claim names, undecided at 10 seeds. (claim, label, truth, pilot seeds):
# the pilot is the study whose observed effect is the truth (exact quantiles for rates, whose figure
# depends on k / n only; a large random study for bootstrap statistics).
EFFECTS: list[tuple[str, str, dict[str, Scores], int]] = [
    (
        "C1",
        "RLV about 2.6x faster (ratio 0.38)",
        {"sac": Scores(p_converge=1.0, learn=40, sd=0.1), "rlv": Scores(p_converge=1.0, learn=15, sd=0.1)},
        20_000,  # the ratio's estimate is noisy even at a few thousand seeds, and the answer sensitive
    ),
    ("C2", "rate 0.5", {"rlv": Scores(p_converge=0.5)}, 10),
    ("C3", "rate 0.75", {"sac": Scores(p_converge=0.75)}, 20),
    (
        "C4",
        "RLMU 90% at 0.6, RLV 50% at 0.85",
        {
            "rlmu": Scores(p_converge=0.9, plateau=0.6),
            "rlv": Scores(p_converge=0.5, plateau=0.85),
        },
        1000,
    ),
    (
        "C5",
        "rates 0.8 vs 0.5 and 0.4",
        {
            "rlv_jitter5_half": Scores(p_converge=0.8),
            "rlv": Scores(p_converge=0.5),
            "rlv_jitter5": Scores(p_converge=0.4),
        },
        10,
    ),
    ("C6", "identical (P = 0.5)", {"rlv_reverse": Scores(dist="logit"), "rlv": Scores(dist="logit")}, 1000),
    ("C7", "rate 0.03", {"rlv_negreward": Scores(p_converge=0.03)}, 100),
    (
        "C8",
        "both 80% at 0.75, single modes 70% at 0.6 / 0.62",
        {
            "virl_both": Scores(p_converge=0.8, plateau=0.75),
            "virl_spatial": Scores(p_converge=0.7, plateau=0.6),
            "virl_temporal": Scores(p_converge=0.7, plateau=0.62),
        },
        1000,
    ),
]


def effect_pilot(claim_id: str, specs: dict[str, Scores], pilot: int) -> StudyData:
    """The pilot study of an ``EFFECTS`` entry (see there)."""
    curves = claim_id == "C1"
    if pilot >= 100 and claim_id not in ("C2", "C3", "C5", "C7"):
        return pilot_study(specs, pilot, rng_seed=0, with_curves=curves)
    return representative_study(specs, pilot, with_curves=curves)


def simulate_verdicts(
    claim_id: str,
    specs: dict[str, Scores] | Callable[[np.random.Generator], dict[str, Scores]],
    seeds: int,
    studies: int,
    rng_seed: int = 0,
    reps: int = 1_000,
    curve_reps: int = 400,
    min_seeds: int = 10,
    tasks: tuple[str, ...] = ("push",),
) -> Counter:
    """Verdicts of claim ``claim_id`` over ``studies`` simulated studies with ``seeds`` seeds per group.

    ``specs``: variant -> true ``Scores`` (the claim's variants). Returns a Counter of verdicts.
    """
    claim = CLAIMS_BY_ID[claim_id]
    with_curves = claim_id == "C1"
    rng = np.random.default_rng(rng_seed)
    out: Counter = Counter()
    for i in range(studies):
        study = StudyData(
            {
                (t, v): _draw_group(rng, v, spec, seeds, t, with_curves)
                for t in tasks
                for v, spec in specs.items()
            }
        )
        (r,) = evaluate_claims(
            study,
            seed=i,
            reps=reps,
            curve_reps=curve_reps,
            min_seeds=min_seeds,
            claims=[claim],
            seeds_needed=False,
        )
        out[r.verdict] += 1
    return out


def verdict_rates(counts: Counter) -> dict[str, float]:
    total = sum(counts.values())
    return {k: counts.get(k, 0) / total for k in ("supported", "contradicted", "inconclusive")}


# ------------------------------------------------------------------------------------------- coverage

COVERAGE_SCENARIOS: dict[str, Scores] = {
    "continuous (beta-like)": Scores(dist="logit", loc=0.0),
    "half converge": Scores(p_converge=0.5, plateau=0.8, sd=0.05),
    "most converge": Scores(p_converge=0.8, plateau=0.7, sd=0.1),
}


def _truth(spec: Scores, stat: str, rng: np.random.Generator) -> float:
    x, _ = spec.draw(rng, 2_000_000)
    if stat == "mean":
        return float(x.mean())
    if stat == "IQM":
        return float(scipy.stats.trim_mean(x, 0.25))
    return 0.0 if stat == "IQM difference" else 0.5  # identical groups


def coverage(spec: Scores, stat: str, n: int, studies: int, reps: int, rng_seed: int = 0) -> dict[str, float]:
    """Share of simulated studies whose 95% interval misses the truth, percentile and BCa.

    ``stat``: ``"mean"`` or ``"IQM"`` of one group, or ``"IQM difference"`` / ``"P(X > Y)"`` of two
    identically distributed groups (truth 0 and 0.5).
    """
    rng = np.random.default_rng(rng_seed)
    truth = _truth(spec, stat, rng)
    miss = {"percentile": 0, "BCa": 0}
    for _ in range(studies):
        x, _ = spec.draw(rng, n)
        if stat in ("mean", "IQM"):
            f = mean if stat == "mean" else iqm
            point = float(f(x))
            values = strata_bootstrap(lambda s, f=f: f(s[..., None]), [[x]], reps, rng)
            idx = np.arange(n)
            jack = (f(np.stack([x[idx != i] for i in idx])[..., None]),)
        else:
            y, _ = spec.draw(rng, n)
            if stat == "IQM difference":
                point = float(iqm(x) - iqm(y))
                values = strata_bootstrap(
                    lambda a, b: iqm(a[..., None]) - iqm(b[..., None]), [[x], [y]], reps, rng
                )
                idx = np.arange(n)
                jx = np.array([iqm(x[idx != i]) for i in idx]) - iqm(y)
                jy = iqm(x) - np.array([iqm(y[idx != i]) for i in idx])
                jack = (jx, jy)
            else:
                point = float(poi(x, y))
                rngs = {"x": rng, "y": rng}
                values = poi_bootstraps({"x": x[:, None], "y": y[:, None]}, [("x", "y")], reps, rngs=rngs)[
                    ("x", "y")
                ]
                d = x[:, None] - y[None, :]
                k = (d > 0) + 0.5 * (d == 0)
                jack = (
                    (k.sum() - k.sum(1)) / ((n - 1) * n),
                    (k.sum() - k.sum(0)) / (n * (n - 1)),
                )
        for name, method in (("percentile", "percentile"), ("BCa", "bca")):
            low, high = BootstrapEvidence(point, values, method=method, jackknife=jack).interval
            miss[name] += not (low <= truth <= high)
    return {k: v / studies for k, v in miss.items()}


def coverage_table(studies: int = 1_000, reps: int = 2_000, ns=(5, 10, 20)) -> list[dict]:
    rows = []
    for label, spec in COVERAGE_SCENARIOS.items():
        for stat in ("mean", "IQM", "IQM difference", "P(X > Y)"):
            for n in ns:
                m = coverage(spec, stat, n, studies, reps, rng_seed=n)
                rows.append({"scenario": label, "statistic": stat, "seeds": n, **m})
    return rows


def null_rates(studies: int = 1_000, seeds: int = 10) -> list[dict]:
    """False "supported" and "contradicted" rates of every ``NULLS`` scenario at ``seeds`` per group."""
    rows = []
    for k, (cid, label, specs) in enumerate(NULLS):
        rates = verdict_rates(simulate_verdicts(cid, specs, seeds, studies, rng_seed=100 + k))
        rows.append({"claim": cid, "truth": label, **rates})
    return rows


def effect_power(claim_id: str, label: str, specs, pilot: int, studies: int, rng_seed: int = 0) -> dict:
    """The seeds needed that the claims routine gives for a pilot of the true effect, and the share of
    ``studies`` simulated studies of that many seeds per group in which the claim is supported."""
    # the pilot's own intervals do not enter the answer (only its estimates and resampled studies do)
    study = effect_pilot(claim_id, specs, pilot)
    needed, reason = seeds_needed(study, CLAIMS_BY_ID[claim_id], reps=500, curve_reps=50)
    row = {"claim": claim_id, "truth": label, "seeds_needed": needed, "reason": reason, "power": None}
    if needed is not None:
        rates = verdict_rates(simulate_verdicts(claim_id, specs, needed, studies, rng_seed=rng_seed))
        row["power"] = rates["supported"]
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description="Miss rates of 95% bootstrap intervals, and the claims' false-verdict rates and power "
        "(the tables of docs/statistics.md)."
    )
    ap.add_argument("--studies", type=int, default=1_000)
    ap.add_argument("--reps", type=int, default=2_000)
    ap.add_argument("--verdicts", action="store_true", help="verdict rates and power instead of coverage")
    args = ap.parse_args(argv)
    if args.verdicts:
        print("| claim | truth | false supported | false contradicted |")
        print("|---|---|---|---|")
        for r in null_rates(args.studies):
            print(
                f"| {r['claim']} | {r['truth']} | {r['supported']:.1%} | {r['contradicted']:.1%} |",
                flush=True,
            )
        print("\n| claim | true effect | seeds needed (printed) | supported at that many seeds |")
        print("|---|---|---|---|")
        for k, (cid, label, specs, pilot) in enumerate(EFFECTS):
            r = effect_power(cid, label, specs, pilot, args.studies, rng_seed=200 + k)
            power = "-" if r["power"] is None else f"{r['power']:.1%}"
            print(f"| {cid} | {label} | {r['seeds_needed'] or r['reason']} | {power} |", flush=True)
        return
    print("| scenario | statistic | seeds | percentile misses | BCa misses |")
    print("|---|---|---|---|---|")
    for r in coverage_table(args.studies, args.reps):
        print(
            f"| {r['scenario']} | {r['statistic']} | {r['seeds']} | {r['percentile']:.1%} | {r['BCa']:.1%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
