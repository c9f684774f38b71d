"""The paper table (METHODS section 5): each claim, how it is measured, and a verdict.

A verdict compares a 95% interval with the region the claim asserts:

- ``supported``: the interval lies inside the claimed region;
- ``contradicted``: the interval lies wholly outside it;
- ``inconclusive``: the interval straddles a region boundary; ``seeds_needed`` then says how many seeds per
  group would resolve it with 80% power if the observed effect were the truth (``rlmu.stats.power``);
- ``not measured``: the study lacks a variant the claim needs (named in ``detail``).

No verdict rests on a degenerate sample: when the smallest group a claim compares has fewer than
``min_seeds`` seeds (``evaluate_claims``; default ``DEFAULT_MIN_SEEDS`` = 5), the claim is inconclusive
whatever its interval says, and ``seeds_needed`` is at least ``min_seeds`` (the power-based number where
that is larger). With one or two seeds a bootstrap interval collapses to a point (every resample is the
same runs) and a Wilson interval spans most of [0, 1], so an interval that happens to clear a region
boundary says nothing about the method. The same rule applies to every claim.

Operationalisation (claims C1-C7 on the visual pushing task ``push``; C8 on every task with all three
VIRL modes). Scores are final evaluation returns normalised to [0, 1]; "converged" follows METHODS section 4.

- C1 (``sac``, ``rlv``): sample-efficiency ratio = env steps at which RLV's IQM curve first reaches 80% of
  SAC's final IQM, divided by the steps SAC's IQM curve needs for the same level (inf if RLV never gets
  there). Region: ratio < 0.5. Interval: stratified bootstrap of whole curves, both methods resampled.
  If SAC's final IQM is below 0.05 there is no level to compare at: inconclusive.
- C2 (``rlv``): convergence rate with its Wilson interval; "about 5/10" is the region [0.3, 0.7].
- C3 (``sac``): convergence rate, region [0.7, 0.8].
- C4 (``rlmu``, ``rlv``): probability of improvement P(RLMU > RLV) on all seeds, region > 0.5, AND on the
  converged seeds only, region < 0.5 (needs >= 2 converged seeds each). Supported when both parts are,
  contradicted when either part is.
- C5 (``rlv_jitter5_half``, ``rlv``, ``rlv_jitter5``): "more consistent" = a higher convergence rate than
  RLV, and "ratio 1.0 unstable" = a lower rate at ratio 1.0 than at 0.5. Both rate differences with
  Newcombe intervals, region > 0. Across-seed SDs of final scores are reported as extras.
- C6 (``rlv_reverse``, ``rlv``): equivalence: P(reverse > RLV) within [0.36, 0.64] (the "small effect"
  bounds of Vargha and Delaney's A, which is the same quantity).
- C7 (``rlv_negreward``): convergence rate, region [0, 0.1].
- C8 (``virl_both``, ``virl_spatial``, ``virl_temporal``): IQM(both) - IQM(single) for each single mode,
  bootstrap interval of the difference, region > 0; both comparisons must hold. The value shown is the
  smaller difference. Seeds needed: two-sample t-test at Cohen's d of the final scores.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rlmu.stats.bootstrap import (
    percentile_interval,
    probability_of_improvement,
    rng_for,
    stratified_bootstrap,
)
from rlmu.stats.convergence import fisher_exact, newcombe_difference, wilson_interval
from rlmu.stats.metrics import iqm
from rlmu.stats.power import (
    cohens_d,
    seeds_for_interval,
    seeds_for_means,
    seeds_for_proportions,
    seeds_for_rate_region,
)
from rlmu.tasks import get_task

__all__ = [
    "CLAIMS",
    "CLAIMS_BY_ID",
    "DEFAULT_MIN_SEEDS",
    "Claim",
    "ClaimResult",
    "GroupData",
    "StudyData",
    "VERDICTS",
    "claims_table",
    "evaluate_claims",
]

VERDICTS = ("supported", "contradicted", "inconclusive", "not measured")
PUSH = "push"
# Fewest seeds per group a supported/contradicted verdict may rest on. 5 is the smallest count at which a
# percentile bootstrap has more than a handful of distinct resamples (5^5 = 3125 ordered ones; with 2
# seeds there are 3 distinct means), and at which a 0/n or n/n convergence count gives a Wilson interval
# narrower than [0, 0.57] / [0.43, 1]. It is a floor against degenerate samples, not a power target:
# ``seeds_needed`` reports the latter. (An interval that already clears a boundary needs no more seeds by
# the power rule, so for a verdict held back by this floor ``seeds_needed`` is the floor itself.)
DEFAULT_MIN_SEEDS = 5

# Claim parameters (choices of ours, see the module docstring).
C1_LEVEL = 0.8  # fraction of SAC's final IQM both curves must reach
C1_MIN_SAC_IQM = 0.05
C2_REGION = (0.3, 0.7)
C3_REGION = (0.7, 0.8)
C6_REGION = (0.36, 0.64)
C7_REGION = (None, 0.1)


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    source: str


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "RLV learns visual pushing with less than half the samples SAC needs", "RLV abstract"),
    Claim("C2", "RLV converges on only ~5/10 seeds after 300 epochs on visual pushing", "RLMU sec. 4"),
    Claim("C3", "SAC converges on 70-80% of seeds", "RLMU sec. 4"),
    Claim(
        "C4",
        "RLMU (no paired data) beats RLV with paired data when all seeds are counted, and is worse "
        "on converged seeds only",
        "RLMU sec. 4, Fig. 3",
    ),
    Claim(
        "C5",
        "negative jitter at ratio 0.5 gives more consistent results than RLV; ratio 1.0 is unstable",
        "RLMU sec. 3.2, Fig. 2",
    ),
    Claim("C6", "reversed-video augmentation does not change RLV's performance", "RLMU sec. 3.2"),
    Claim("C7", "negative reward on reversed segments fails to converge", "RLMU sec. 3.2"),
    Claim("C8", "VIRL: spatial + temporal reward beats either alone", "VIRL"),
)
CLAIMS_BY_ID: dict[str, Claim] = {c.id: c for c in CLAIMS}


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class GroupData:
    """The runs of one (task, variant). Arrays over seeds are in ``seeds`` order."""

    task: str
    variant: str
    seeds: np.ndarray  # (n,)
    final_return: np.ndarray  # (n,) raw final evaluation return
    final_score: np.ndarray  # (n,) normalised to [0, 1]
    converged: np.ndarray  # (n,) bool
    steps: np.ndarray  # (T,) env steps present in every run of the group
    curves: np.ndarray  # (T, n) normalised evaluation return at ``steps``
    epochs: int  # most epochs any run of the group has

    @property
    def n(self) -> int:
        return int(self.seeds.size)


@dataclass
class StudyData:
    """Final scores, curves and convergence flags per (task, variant)."""

    groups: dict[tuple[str, str], GroupData] = field(default_factory=dict)

    REQUIRED = ("task", "variant", "seed", "env_steps", "eval_return_mean")

    def get(self, task: str, variant: str) -> GroupData | None:
        return self.groups.get((task, variant))

    def tasks(self) -> list[str]:
        return sorted({t for t, _ in self.groups})

    def variants(self, task: str) -> list[str]:
        return sorted(v for t, v in self.groups if t == task)

    @classmethod
    def from_table(
        cls, df: pd.DataFrame, converge_thresholds: Mapping[str, float] | None = None
    ) -> StudyData:
        """Build from a tidy table with one row per epoch per run.

        Columns (at least): task, variant, seed, env_steps, eval_return_mean. A run's last row (largest
        env_steps) is its final return; it converges when that return is strictly above
        ``converge_thresholds[task]`` or, by default, ``rlmu.tasks.get_task(task).converge_threshold``.
        Curves keep the env steps every run of a group has, so runs of different lengths are cut to the
        shortest. A NaN final return is an error naming the run: decide about failed runs before this.
        """
        missing = [c for c in cls.REQUIRED if c not in df.columns]
        if missing:
            raise ValueError(f"StudyData.from_table: table lacks columns {missing} (has {list(df.columns)})")
        if df.empty:
            raise ValueError("StudyData.from_table: table has no rows")
        groups = {}
        for (task, variant), g in df.groupby(["task", "variant"], sort=True):
            spec = get_task(str(task))
            thr = spec.converge_threshold
            if converge_thresholds is not None and task in converge_thresholds:
                thr = float(converge_thresholds[task])
            seeds, finals, step_sets, per_seed, epochs = [], [], [], {}, 0
            for seed, run in g.groupby("seed", sort=True):
                run = run.sort_values("env_steps")
                if run["env_steps"].duplicated().any():
                    raise ValueError(f"{task}/{variant}/seed {seed}: duplicate env_steps rows")
                final = float(run["eval_return_mean"].iloc[-1])
                if not np.isfinite(final):
                    raise ValueError(f"{task}/{variant}/seed {seed}: final eval_return_mean is {final}")
                seeds.append(seed)
                finals.append(final)
                per_seed[seed] = run.set_index("env_steps")["eval_return_mean"]
                step_sets.append(set(run["env_steps"].tolist()))
                epochs = max(epochs, len(run))
            steps = np.array(sorted(set.intersection(*step_sets)), dtype=float)
            curves = np.stack([per_seed[s].loc[steps].to_numpy(dtype=float) for s in seeds], axis=1)
            finals = np.array(finals, dtype=float)
            groups[(str(task), str(variant))] = GroupData(
                task=str(task),
                variant=str(variant),
                seeds=np.array(seeds),
                final_return=finals,
                final_score=np.asarray(spec.normalise(finals), dtype=float),
                converged=finals > thr,
                steps=steps,
                curves=np.asarray(spec.normalise(curves), dtype=float).reshape(len(steps), len(seeds)),
                epochs=epochs,
            )
        return cls(groups)


# -------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ClaimResult:
    id: str
    claim: str
    source: str
    task: str
    statistic: str  # what ``value`` and ``interval`` measure
    value: float
    interval: tuple[float, float]  # 95% interval of ``value``
    n_seeds: int  # seeds per group (the smallest group compared)
    verdict: str  # one of VERDICTS
    # inconclusive only: seeds per group for 80% power at the observed effect, and at least ``min_seeds``
    # when the verdict is inconclusive because the groups are smaller than that
    seeds_needed: int | None
    detail: str  # one sentence
    extras: dict = field(default_factory=dict)  # secondary statistics (names -> numbers)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "claim": self.claim,
            "source": self.source,
            "task": self.task,
            "statistic": self.statistic,
            "value": self.value,
            "low": self.interval[0],
            "high": self.interval[1],
            "n_seeds": self.n_seeds,
            "verdict": self.verdict,
            "seeds_needed": self.seeds_needed,
            "detail": self.detail,
            "extras": dict(self.extras),
        }


def claims_table(results: list[ClaimResult]) -> pd.DataFrame:
    """One row per claim (``ClaimResult.to_dict`` without extras)."""
    rows = [{k: v for k, v in r.to_dict().items() if k != "extras"} for r in results]
    return pd.DataFrame(rows)


def _result(cid, task, statistic, value, interval, n, verdict, needed, detail, extras=None) -> ClaimResult:
    c = CLAIMS_BY_ID[cid]
    assert verdict in VERDICTS, verdict
    return ClaimResult(
        c.id,
        c.text,
        c.source,
        task,
        statistic,
        float(value),
        (float(interval[0]), float(interval[1])),
        int(n),
        verdict,
        needed,  # computed for inconclusive intervals only; ``_apply_min_seeds`` decides what is shown
        detail,
        dict(extras or {}),
    )


def _not_measured(cid: str, task: str, missing: list[str]) -> ClaimResult:
    return _result(
        cid,
        task,
        "-",
        math.nan,
        (math.nan, math.nan),
        0,
        "not measured",
        None,
        f"the study has no runs of {', '.join(missing)} on {task}",
    )


def _verdict(low: float, high: float, region: tuple[float | None, float | None]) -> str:
    """Interval [low, high] vs a region (None = unbounded side; the bounds themselves are outside)."""
    lo, hi = region
    if (lo is not None and high <= lo) or (hi is not None and low >= hi):
        return "contradicted"
    if (lo is None or low > lo) and (hi is None or high < hi):
        return "supported"
    return "inconclusive"


def _combine(verdicts: list[str]) -> str:
    if "contradicted" in verdicts:
        return "contradicted"
    if all(v == "supported" for v in verdicts):
        return "supported"
    return "inconclusive"


def _max_needed(values: list[int | None]) -> int | None:
    return None if not values or any(v is None for v in values) else max(values)


def _region_bounds(region) -> tuple[float, float]:
    return (-math.inf if region[0] is None else region[0], math.inf if region[1] is None else region[1])


def _fmt_region(region) -> str:
    lo, hi = region
    if lo is None:
        return f"< {hi:g}"
    if hi is None:
        return f"> {lo:g}"
    return f"in [{lo:g}, {hi:g}]"


# --------------------------------------------------------------------------------------------- claims


def _need(study: StudyData, task: str, variants: list[str]) -> tuple[list[GroupData], list[str]]:
    groups = [study.get(task, v) for v in variants]
    return groups, [v for v, g in zip(variants, groups, strict=True) if g is None]


def _rate_claim(cid: str, study: StudyData, variant: str, region, extra_detail: str = "") -> ClaimResult:
    (g,), missing = _need(study, PUSH, [variant])
    if missing:
        return _not_measured(cid, PUSH, missing)
    k, n = int(g.converged.sum()), g.n
    p, low, high = wilson_interval(k, n)
    verdict = _verdict(low, high, region)
    needed = None
    if verdict == "inconclusive":
        lo, hi = region
        needed = seeds_for_rate_region(
            p, (0.0 if lo is None else lo, 1.0 if hi is None else hi)
        ).seeds_per_group
    detail = (
        f"{variant} converged on {k} of {n} seed{'' if n == 1 else 's'} after {g.epochs} epochs (Wilson 95% "
        f"[{low:.2f}, {high:.2f}]); claimed rate {_fmt_region(region)}{extra_detail}"
    )
    return _result(
        cid,
        PUSH,
        f"convergence rate of {variant}",
        p,
        (low, high),
        n,
        verdict,
        needed,
        detail,
        {"converged": k},
    )


def _iqm_curve_batch(s: np.ndarray) -> np.ndarray:
    """(batch, runs, 1, T) resampled curves -> (batch, T) IQM at each step."""
    return iqm(np.moveaxis(s, -1, 1))


def _first_reach(curve: np.ndarray, level: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(batch, T) curves, (batch,) levels -> (batch,) first step at which curve >= level (inf if never)."""
    hit = curve >= level[:, None] - 1e-12
    idx = hit.argmax(axis=1)
    return np.where(hit.any(axis=1), steps[idx], np.inf)


def _claim_c1(study: StudyData, seed: int, reps: int) -> ClaimResult:
    (sac, rlv), missing = _need(study, PUSH, ["sac", "rlv"])
    if missing:
        return _not_measured("C1", PUSH, missing)
    steps = np.intersect1d(sac.steps, rlv.steps)
    n = min(sac.n, rlv.n)
    stat = f"steps to {C1_LEVEL:.0%} of SAC's final IQM, RLV / SAC"
    if steps.size < 2:
        return _result(
            "C1",
            PUSH,
            stat,
            math.nan,
            (math.nan, math.nan),
            n,
            "inconclusive",
            None,
            "SAC and RLV share fewer than two evaluation steps",
        )
    # (runs, 1, T) curves on the common steps
    c_sac = sac.curves[np.isin(sac.steps, steps)].T[:, None, :]
    c_rlv = rlv.curves[np.isin(rlv.steps, steps)].T[:, None, :]

    def ratio(s_sac, s_rlv):
        i_sac, i_rlv = _iqm_curve_batch(s_sac), _iqm_curve_batch(s_rlv)
        level = C1_LEVEL * i_sac[:, -1]
        return _first_reach(i_rlv, level, steps) / _first_reach(i_sac, level, steps)

    point = float(ratio(c_sac[None], c_rlv[None])[0])
    sac_final = float(iqm(c_sac[:, :, -1]))
    if sac_final < C1_MIN_SAC_IQM:
        return _result(
            "C1",
            PUSH,
            stat,
            point,
            (math.nan, math.nan),
            n,
            "inconclusive",
            None,
            f"SAC's final IQM is {sac_final:.3f}: SAC does not learn, so there is no level to "
            f"compare sample efficiency at",
            {"sac_final_iqm": sac_final},
        )
    values = stratified_bootstrap(ratio, [c_sac, c_rlv], reps=reps, seed=rng_for(seed, "C1"))
    low, high = percentile_interval(values, method="inverted_cdf")  # the ratio can be inf
    region = (None, 0.5)
    verdict = _verdict(low, high, region)
    needed = None
    if verdict == "inconclusive" and np.isfinite(high) and low > 0:
        needed = seeds_for_interval(
            n, math.log(point), math.log(low), math.log(high), (-math.inf, math.log(0.5))
        ).seeds_per_group
    detail = (
        f"RLV reaches {C1_LEVEL:.0%} of SAC's final IQM ({sac_final:.2f}) after {point:.2f}x SAC's "
        f"steps (95% [{low:.2f}, {high:.2f}]); claimed ratio < 0.5"
    )
    return _result(
        "C1",
        PUSH,
        stat,
        point,
        (low, high),
        n,
        verdict,
        needed,
        detail,
        {"sac_final_iqm": sac_final, "level": C1_LEVEL * sac_final},
    )


def _claim_c4(study: StudyData, seed: int, reps: int) -> ClaimResult:
    (rlmu, rlv), missing = _need(study, PUSH, ["rlmu", "rlv"])
    if missing:
        return _not_measured("C4", PUSH, missing)
    n = min(rlmu.n, rlv.n)
    all_ = probability_of_improvement(
        {"rlmu": rlmu.final_score, "rlv": rlv.final_score}, pairs=[("rlmu", "rlv")], reps=reps, seed=seed
    )[("rlmu", "rlv")]
    v_all = _verdict(all_.low, all_.high, (0.5, None))
    needed = []
    if v_all == "inconclusive":
        needed.append(seeds_for_interval(n, all_.point, all_.low, all_.high, (0.5, math.inf)).seeds_per_group)
    extras = {"poi_all": all_.point}
    cm, cv = rlmu.final_score[rlmu.converged], rlv.final_score[rlv.converged]
    if min(cm.size, cv.size) >= 2:
        conv = probability_of_improvement(
            {"rlmu": cm, "rlv": cv}, pairs=[("rlmu", "rlv")], reps=reps, seed=seed + 1
        )[("rlmu", "rlv")]
        v_conv = _verdict(conv.low, conv.high, (None, 0.5))
        extras.update(
            poi_converged=conv.point,
            poi_converged_low=conv.low,
            poi_converged_high=conv.high,
            converged_rlmu=int(cm.size),
            converged_rlv=int(cv.size),
        )
        if v_conv == "inconclusive":
            n_conv = seeds_for_interval(
                min(cm.size, cv.size), conv.point, conv.low, conv.high, (-math.inf, 0.5)
            ).seeds_per_group
            # converged seeds needed -> seeds to run, at the lower observed convergence rate
            rate = min(rlmu.converged.mean(), rlv.converged.mean())
            needed.append(None if n_conv is None else math.ceil(n_conv / rate))
        conv_text = (
            f"on converged seeds only {conv.point:.2f} (95% [{conv.low:.2f}, {conv.high:.2f}], claimed < 0.5)"
        )
    else:
        v_conv = "inconclusive"
        needed.append(None)
        conv_text = (
            f"the converged-only comparison needs >= 2 converged seeds each "
            f"(have {cm.size} RLMU, {cv.size} RLV)"
        )
    verdict = _combine([v_all, v_conv])
    detail = (
        f"P(RLMU > RLV) on all seeds {all_.point:.2f} (95% [{all_.low:.2f}, {all_.high:.2f}], "
        f"claimed > 0.5); {conv_text}"
    )
    return _result(
        "C4",
        PUSH,
        "P(RLMU > RLV), all seeds",
        all_.point,
        (all_.low, all_.high),
        n,
        verdict,
        _max_needed(needed),
        detail,
        extras,
    )


def _claim_c5(study: StudyData) -> ClaimResult:
    (half, rlv, full), missing = _need(study, PUSH, ["rlv_jitter5_half", "rlv", "rlv_jitter5"])
    if missing:
        return _not_measured("C5", PUSH, missing)
    kh, nh = int(half.converged.sum()), half.n
    kr, nr = int(rlv.converged.sum()), rlv.n
    kf, nf = int(full.converged.sum()), full.n
    d1 = newcombe_difference(kh, nh, kr, nr)
    d2 = newcombe_difference(kh, nh, kf, nf)
    verdicts = [_verdict(d[1], d[2], (0.0, None)) for d in (d1, d2)]
    needed = [
        seeds_for_proportions(kh / nh, kx / nx).seeds_per_group
        for v, (kx, nx) in zip(verdicts, [(kr, nr), (kf, nf)], strict=True)
        if v == "inconclusive"
    ]
    extras = {
        "rate_half": kh / nh,
        "rate_rlv": kr / nr,
        "rate_ratio1": kf / nf,
        "diff_half_vs_ratio1": d2[0],
        "diff_half_vs_ratio1_low": d2[1],
        "diff_half_vs_ratio1_high": d2[2],
        "fisher_p_half_vs_rlv": fisher_exact(kh, nh, kr, nr),
        "fisher_p_half_vs_ratio1": fisher_exact(kh, nh, kf, nf),
        "sd_half": float(np.std(half.final_score, ddof=1)) if nh > 1 else math.nan,
        "sd_rlv": float(np.std(rlv.final_score, ddof=1)) if nr > 1 else math.nan,
        "sd_ratio1": float(np.std(full.final_score, ddof=1)) if nf > 1 else math.nan,
    }
    detail = (
        f"convergence at ratio 0.5 {kh}/{nh} vs RLV {kr}/{nr} (difference {d1[0]:+.2f}, 95% "
        f"[{d1[1]:+.2f}, {d1[2]:+.2f}]) and vs ratio 1.0 {kf}/{nf} (difference {d2[0]:+.2f}, 95% "
        f"[{d2[1]:+.2f}, {d2[2]:+.2f}]); both claimed > 0"
    )
    return _result(
        "C5",
        PUSH,
        "convergence rate, jitter ratio 0.5 - RLV",
        d1[0],
        (d1[1], d1[2]),
        min(nh, nr, nf),
        _combine(verdicts),
        _max_needed(needed),
        detail,
        extras,
    )


def _claim_c6(study: StudyData, seed: int, reps: int) -> ClaimResult:
    (rev, rlv), missing = _need(study, PUSH, ["rlv_reverse", "rlv"])
    if missing:
        return _not_measured("C6", PUSH, missing)
    n = min(rev.n, rlv.n)
    poi = probability_of_improvement(
        {"rev": rev.final_score, "rlv": rlv.final_score}, pairs=[("rev", "rlv")], reps=reps, seed=seed
    )[("rev", "rlv")]
    verdict = _verdict(poi.low, poi.high, C6_REGION)
    needed = None
    if verdict == "inconclusive":
        needed = seeds_for_interval(n, poi.point, poi.low, poi.high, C6_REGION).seeds_per_group
    detail = (
        f"P(reverse > RLV) = {poi.point:.2f} (95% [{poi.low:.2f}, {poi.high:.2f}]); no change means "
        f"within [{C6_REGION[0]}, {C6_REGION[1]}]"
    )
    return _result(
        "C6", PUSH, "P(RLV+reverse > RLV)", poi.point, (poi.low, poi.high), n, verdict, needed, detail
    )


def _claim_c8(study: StudyData, seed: int, reps: int) -> ClaimResult:
    modes = ["virl_both", "virl_spatial", "virl_temporal"]
    tasks = [t for t in study.tasks() if all(study.get(t, m) is not None for m in modes)]
    if not tasks:
        present = sorted({v for _, v in study.groups if v in modes})
        missing = [m for m in modes if m not in present]
        return _not_measured("C8", "any task", missing or modes)
    # runs x tasks per mode; tasks with more seeds are cut to the smallest count (rliable needs a matrix)
    n = min(study.get(t, m).n for t in tasks for m in modes)
    scores = {m: np.stack([study.get(t, m).final_score[:n] for t in tasks], axis=1) for m in modes}
    diffs, verdicts, needed, parts = {}, [], [], []
    for single in modes[1:]:
        values = stratified_bootstrap(
            lambda a, b: iqm(a) - iqm(b),
            [scores["virl_both"], scores[single]],
            reps=reps,
            seed=rng_for(seed, "C8", single),
        )
        point = iqm(scores["virl_both"]) - iqm(scores[single])
        low, high = percentile_interval(values)
        v = _verdict(low, high, (0.0, None))
        verdicts.append(v)
        diffs[single] = (point, low, high)
        if v == "inconclusive":
            try:
                needed.append(seeds_for_means(cohens_d(scores["virl_both"], scores[single])).seeds_per_group)
            except ValueError:
                needed.append(None)
        parts.append(f"vs {single.split('_')[1]} {point:+.2f} (95% [{low:+.2f}, {high:+.2f}])")
    binding = min(diffs, key=lambda s: diffs[s][0])
    point, low, high = diffs[binding]
    extras = {f"iqm_diff_vs_{s.split('_')[1]}": d[0] for s, d in diffs.items()}
    detail = (
        f"IQM of spatial+temporal minus single mode on {', '.join(tasks)}: "
        + "; ".join(parts)
        + "; claimed > 0"
    )
    return _result(
        "C8",
        ",".join(tasks),
        f"IQM difference, both - {binding.split('_')[1]}",
        point,
        (low, high),
        n,
        _combine(verdicts),
        _max_needed(needed),
        detail,
        extras,
    )


def _apply_min_seeds(r: ClaimResult, min_seeds: int) -> ClaimResult:
    """The one rule on sample size, the same for every claim (module docstring): below ``min_seeds`` seeds
    in the smallest compared group the verdict is inconclusive and ``seeds_needed`` at least
    ``min_seeds``. Otherwise ``seeds_needed`` is kept for inconclusive verdicts only."""
    if r.verdict == "not measured":
        return r
    if r.n_seeds < min_seeds:
        needed = max(min_seeds, r.seeds_needed or 0)
        was = "" if r.verdict == "inconclusive" else f" (the interval alone would say {r.verdict})"
        detail = (
            f"{r.detail}. Too few seeds: {r.n_seeds} in the smallest group, fewer than the {min_seeds} "
            f"a verdict needs{was}"
        )
        return dataclasses.replace(r, verdict="inconclusive", seeds_needed=needed, detail=detail)
    if r.verdict != "inconclusive":
        return dataclasses.replace(r, seeds_needed=None)
    return r


def evaluate_claims(
    study: StudyData,
    seed: int = 0,
    reps: int = 10_000,
    curve_reps: int = 2_000,
    min_seeds: int = DEFAULT_MIN_SEEDS,
) -> list[ClaimResult]:
    """Evaluate C1-C8 on ``study``. ``reps``: bootstrap repetitions for score statistics; ``curve_reps``:
    for C1's curve statistic. ``min_seeds``: fewest seeds per group (the smallest group a claim compares)
    a supported or contradicted verdict may rest on; below it every claim is inconclusive (see
    ``DEFAULT_MIN_SEEDS`` for why 5). Same ``seed`` -> identical results."""
    if isinstance(min_seeds, bool) or not isinstance(min_seeds, int | np.integer) or min_seeds < 1:
        raise ValueError(f"min_seeds must be a positive integer, got {min_seeds!r}")
    results = [
        _claim_c1(study, seed, curve_reps),
        _rate_claim("C2", study, "rlv", C2_REGION),
        _rate_claim("C3", study, "sac", C3_REGION),
        _claim_c4(study, seed, reps),
        _claim_c5(study),
        _claim_c6(study, seed, reps),
        _rate_claim("C7", study, "rlv_negreward", C7_REGION),
        _claim_c8(study, seed, reps),
    ]
    return [_apply_min_seeds(r, int(min_seeds)) for r in results]
