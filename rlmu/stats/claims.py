"""The paper table (METHODS section 5): each claim is a declaration, and one routine turns it into a verdict.

A claim (``Claim``) is a conjunction of parts; a part (``Part``) is a statistic of some variants and the
region the claim puts it in. Adding a claim is one entry in ``CLAIMS``. ``evaluate_claims`` measures every
part, tests it against its region, combines the parts, corrects for testing the whole family, and says how
many seeds an undecided claim would need. ``docs/statistics.md`` is the reader's account of these rules.

Verdicts (``VERDICTS``):

- ``supported``: every part's interval lies inside its region (intersection-union test: the claim's
  p-value is the largest of its parts');
- ``contradicted``: the evidence contradicts the claim as stated, i.e. some part's interval lies wholly
  outside its region at level ``alpha / k`` for a claim of ``k`` parts (Bonferroni within the claim: any
  one of k parts may be the one that fails, so one failing part at the plain level is no evidence against
  the whole);
- ``inconclusive``: neither; ``seeds_needed`` says how many seeds per group would decide it with 80%
  power if the observed effect were the truth, or ``seeds_needed_reason`` says why no number would;
- ``not measured``: the study lacks a variant the claim needs (named in ``detail``).

Both p-values of a claim are on the two-sided scale of its 95% intervals (``rlmu.stats.evidence``), the
smaller one is the claim's p-value, and Holm's correction runs across the claims that were tested (raw and
adjusted p-values are both reported). A verdict needs its Holm-adjusted p-value below ``alpha`` = 0.05.

No verdict rests on a degenerate sample or on empty evidence:

- every group a part compares needs at least ``min_seeds`` seeds (default ``DEFAULT_MIN_SEEDS`` = 10;
  percentile-bootstrap intervals miss the truth up to 10-15% of the time at 5 seeds and about 5% from 10 on,
  see ``docs/statistics.md``). The count is of the seeds the part actually uses: for C4's converged-only
  part, the converged seeds. A part below the floor is not tested;
- a comparison of scores in which no run of either variant ended above the task's minimum says nothing
  about the effect (C4, C6, C8), and a sample-efficiency ratio needs SAC to learn (C1): such a part is not
  tested, and the reason is stated;
- a claim whose parts are not all tested cannot be supported; it can still be contradicted by a tested part.

Operationalisation: C1-C7 are judged on each task of the study that has the variants they need, one row
per task (the papers state them for the visual pushing task ``push``; on another task the same statistic
asks the same question there); C8 is pooled over every task with all three VIRL modes. Scores are final evaluation returns normalised to [0, 1]; "converged" follows METHODS section 4,
and a diverged run counts as a failure everywhere (score 0, not converged; ``rlmu.report.tables``).

- C1 (``sac``, ``rlv``): env steps at which RLV's IQM curve first reaches 80% of SAC's final IQM, divided
  by the steps SAC's IQM curve needs (inf if RLV never gets there); region < 0.5; percentile interval
  from a bootstrap of whole curves.
- C2 / C3 / C7: a convergence rate with its exact (Clopper-Pearson) interval; regions [0.3, 0.7] ("about
  5/10"), [0.7, 0.8] and [0, 0.1]. (At 10 seeds the Wilson interval of the convergence table lies wholly
  above a true rate of 0.1 in 7% of studies; the exact one never misses a side more than 2.5%.)
- C4 (``rlmu``, ``rlv``): IQM(RLMU) - IQM(RLV) of final scores on all seeds > 0 (the report's Fig. 3a) and on
  converged seeds only < 0 (Fig. 3b), each with a percentile interval.
- C5: convergence rate at jitter ratio 0.5 minus RLV's > 0, and minus ratio 1.0's > 0 (Newcombe intervals
  shown; Fisher's exact test, one-sided, decides, since Newcombe's interval exceeds its level at 10 seeds).
- C6 (``rlv_reverse``, ``rlv``): P(reverse > RLV) in [0.36, 0.64] (the "small effect" bounds of Vargha and
  Delaney's A, the same quantity); BCa interval, which ``docs/statistics.md`` measured closer to 95%
  coverage than the percentile interval for this statistic.
- C8 (``virl_both``, ``virl_spatial``, ``virl_temporal``): IQM(both) - IQM(single) > 0 for each single mode,
  all seeds of every task pooled (each task resampled on its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rlmu.stats.bootstrap import draw_counts, poi_bootstraps, poi_from_counts, rng_for, strata_bootstrap
from rlmu.stats.evidence import (
    ALPHA,
    BootstrapEvidence,
    RateDifferenceEvidence,
    RateEvidence,
    holm,
    region_pvalues,
)
from rlmu.stats.metrics import iqm
from rlmu.stats.metrics import probability_of_improvement as _poi
from rlmu.stats.power import (
    rate_difference_power,
    rate_region_power,
    stable_threshold,
)

__all__ = [
    "CLAIMS",
    "CLAIMS_BY_ID",
    "DEFAULT_MIN_SEEDS",
    "Claim",
    "ClaimResult",
    "ConvergenceRate",
    "GroupData",
    "ImprovementProbability",
    "Part",
    "RateDifference",
    "SampleEfficiency",
    "ScoreDifference",
    "StudyData",
    "VERDICTS",
    "evaluate_claims",
    "seeds_needed",
]

VERDICTS = ("supported", "contradicted", "inconclusive", "not measured")
# Fewest seeds per compared group a verdict may rest on (docs/statistics.md has the coverage table behind it).
DEFAULT_MIN_SEEDS = 10
POWER = 0.8  # power that "seeds needed" is computed for
RESAMPLED_STUDIES = 2_000  # studies resampled per candidate seed count for a bootstrap statistic's power
CURVE_RESAMPLED_STUDIES = 500  # the same for C1's curve statistic (each study is T IQMs)
CURVE_POWER_POINTS = 100  # evaluation points C1's power is estimated on
RESAMPLE_MAX_N = 2_000  # largest seed count searched for a bootstrap statistic


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class GroupData:
    """The included runs of one (task, variant). Arrays over seeds are in ``seeds`` order.

    ``final_score``: the normalised final score that every statistic uses (a diverged run: 0).
    ``curves``: normalised evaluation scores at ``steps``, the env steps every run of the group covers.
    """

    task: str
    variant: str
    seeds: np.ndarray  # (n,)
    final_score: np.ndarray  # (n,) in [0, 1]
    converged: np.ndarray  # (n,) bool
    steps: np.ndarray  # (T,)
    curves: np.ndarray  # (T, n)
    epochs: int  # most epochs any run of the group has

    @property
    def n(self) -> int:
        return int(self.seeds.size)


@dataclass
class StudyData:
    """Final scores, curves and convergence flags per (task, variant); built by ``rlmu.report.tables``."""

    groups: dict[tuple[str, str], GroupData] = field(default_factory=dict)

    def get(self, task: str, variant: str) -> GroupData | None:
        return self.groups.get((task, variant))

    def tasks(self) -> list[str]:
        return sorted({t for t, _ in self.groups})

    def variants(self, task: str) -> list[str]:
        return sorted(v for t, v in self.groups if t == task)


@dataclass(frozen=True)
class Settings:
    seed: int
    reps: int  # bootstrap repetitions for score statistics
    curve_reps: int  # for C1's curve statistic
    min_seeds: int


# ----------------------------------------------------------------------------------------- statistics


PowerModel = Callable[[int, tuple, str, float, int], float]  # (n per group, region, verdict, alpha, floor)


@dataclass
class Measurement:
    """What a statistic found: the evidence, the group sizes it rests on, and how its power scales."""

    evidence: object | None  # rlmu.stats.evidence: RateEvidence, RateDifferenceEvidence, BootstrapEvidence
    sizes: dict[str, int]  # group label -> seeds used
    text: str  # a sentence fragment: what was measured and found
    empty: str = ""  # why the evidence cannot decide anything, whatever the sample size ("" if it can)
    power: PowerModel | None = None  # analytic power at n seeds per group (rates)
    # or: the statistic on resampled studies, ``(draws, floor) -> (values (R,), testable (R,))``
    resample: Callable | None = None
    resample_reps: int = RESAMPLED_STUDIES  # studies to resample per candidate seed count
    scale: Callable | None = None  # the scale the resampled intervals are built on (C1: log)
    power_note: str = ""  # why neither is available
    monotone: bool = True  # the analytic power rises monotonically with n (exact tests saw-tooth: False)
    max_n: int = 100_000  # largest n the analytic power is evaluated at
    extras: dict = field(default_factory=dict)

    @property
    def point(self) -> float:
        return math.nan if self.evidence is None else float(self.evidence.point)

    @property
    def interval(self) -> tuple[float, float]:
        return (math.nan, math.nan) if self.evidence is None else self.evidence.interval


def _fmt_iv(low: float, high: float, signed: bool = False) -> str:
    f = "+.2f" if signed else ".2f"
    return f"95% [{low:{f}}, {high:{f}}]"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class _Pair:
    """A statistic comparing variant ``a`` with variant ``b``."""

    a: str
    b: str

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.a, self.b)


def _converged_count(groups, variant: str) -> tuple[int, int]:
    """(converged seeds, seeds) of ``variant`` over the claim's tasks."""
    return sum(int(g.converged.sum()) for g in groups[variant]), sum(g.n for g in groups[variant])


@dataclass(frozen=True)
class ConvergenceRate:
    """Fraction of a variant's seeds that converged (all tasks of the claim pooled); Clopper-Pearson (exact)
    interval and test, which never exceed their level (at 10 seeds the Wilson interval of the tables misses
    one side 7% of the time at a true rate of 0.1, docs/statistics.md)."""

    variant: str

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.variant,)

    @property
    def label(self) -> str:
        return f"convergence rate of {self.variant}"

    def measure(self, groups, settings, key) -> Measurement:
        gs = groups[self.variant]
        k, n = _converged_count(groups, self.variant)
        ev = RateEvidence(k, n, method="exact")
        low, high = ev.interval
        epochs = max(g.epochs for g in gs)
        p = k / n

        def power(m, region, verdict, alpha, floor):
            return 0.0 if m < floor else rate_region_power(p, m, region, verdict, alpha, "exact")

        return Measurement(
            ev,
            {self.variant: n},
            f"{self.variant} converged on {k} of {_plural(n, 'seed')} after {epochs} epochs "
            f"(exact {_fmt_iv(low, high)})",
            power=power,
            monotone=False,
            max_n=5000,
            extras={"converged": k},
        )


@dataclass(frozen=True)
class RateDifference(_Pair):
    """Convergence rate of ``a`` minus that of ``b``; Newcombe's interval, Fisher's exact test (METHODS)."""

    @property
    def label(self) -> str:
        return f"convergence rate, {self.a} - {self.b}"

    def measure(self, groups, settings, key) -> Measurement:
        (ka, na), (kb, nb) = _converged_count(groups, self.a), _converged_count(groups, self.b)
        ev = RateDifferenceEvidence(ka, na, kb, nb)
        low, high = ev.interval
        pa, pb = ka / na, kb / nb

        def power(m, region, verdict, alpha, floor):
            # the boundary is 0: supported above it means "a greater", contradicted means "a less"
            above = region[0] == 0
            sign = "greater" if (verdict == "supported") == above else "less"
            return 0.0 if m < floor else rate_difference_power(pa, pb, m, sign, alpha)

        return Measurement(
            ev,
            {self.a: na, self.b: nb},
            f"{self.a} {ka}/{na} vs {self.b} {kb}/{nb} converged (difference {ev.point:+.2f}, Newcombe "
            f"{_fmt_iv(low, high, signed=True)}, Fisher's exact test decides)",
            power=power,
            monotone=False,
            max_n=2000,
            extras={f"rate_{self.a}": pa, f"rate_{self.b}": pb},
        )


def _iqm_diff(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(batch, runs_x), (batch, runs_y) pooled resamples -> (batch,) IQM(x) - IQM(y)."""
    return iqm(x[..., None]) - iqm(y[..., None])


class Draws:
    """Studies of ``n`` seeds per group resampled from the observed groups (their empirical distribution,
    "the observed effect as the truth"), ``reps`` of them, for the power of a bootstrap statistic.

    Common random numbers: the studies of ``n`` seeds are the first ``n`` seeds of those of any larger
    count (the uniforms are drawn seed-major), so power estimates at neighbouring counts differ by the
    added seeds only and the search over ``n`` sees a smooth curve.
    """

    def __init__(self, groups: dict[str, list[GroupData]], n: int, reps: int, seed: int, key: tuple):
        self.groups, self.n, self.reps, self.seed, self.key = groups, int(n), int(reps), seed, key
        self._idx: dict[tuple[str, int], np.ndarray] = {}

    def indices(self, variant: str, task: int) -> np.ndarray:
        """(reps, n) indices into the seeds of ``groups[variant][task]``."""
        k = (variant, task)
        if k not in self._idx:
            u = rng_for(self.seed, *self.key, variant, task).random((self.n, self.reps)).T
            self._idx[k] = (u * self.groups[variant][task].n).astype(np.int64)
        return self._idx[k]


def _masked_iqm(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(R, M) values, (R, M) mask -> (R,) IQM of each row's masked values (NaN for a row with none)."""
    x = np.sort(np.where(mask, values, np.inf), axis=1)
    c = mask.sum(axis=1)
    lo = (0.25 * c).astype(np.int64)  # scipy.stats.trim_mean's cut, as rlmu.stats.metrics.iqm
    hi = c - lo
    cs = np.zeros((x.shape[0], x.shape[1] + 1))
    np.cumsum(np.where(np.isfinite(x), x, 0.0), axis=1, out=cs[:, 1:])
    rows = np.arange(x.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, (cs[rows, hi] - cs[rows, lo]) / (hi - lo), np.nan)


@dataclass(frozen=True)
class ScoreDifference(_Pair):
    """IQM of ``a``'s final scores minus ``b``'s, over all seeds or converged seeds only; every task of the
    claim pooled, each task's runs resampled on their own; percentile interval."""

    seeds: str = "all"  # "all" | "converged"

    @property
    def label(self) -> str:
        return f"IQM({self.a}) - IQM({self.b}), {'all seeds' if self.seeds == 'all' else 'converged seeds'}"

    def _strata(self, gs: list[GroupData]) -> list[np.ndarray]:
        if self.seeds == "converged":
            return [g.final_score[g.converged] for g in gs]
        return [g.final_score for g in gs]

    def measure(self, groups, settings, key) -> Measurement:
        sa, sb = self._strata(groups[self.a]), self._strata(groups[self.b])
        na, nb = sum(s.size for s in sa), sum(s.size for s in sb)
        where = "on all seeds" if self.seeds == "all" else "on converged seeds only"
        sizes = {self.a: na, self.b: nb}
        if min(na, nb) == 0:
            return Measurement(
                None, sizes, f"IQM({self.a}) - IQM({self.b}) {where}: no seeds ({self.a} {na}, {self.b} {nb})"
            )
        xa, xb = np.concatenate(sa), np.concatenate(sb)
        point = float(iqm(xa) - iqm(xb))
        head = f"IQM({self.a}) - IQM({self.b}) {where} {point:+.2f}"
        if self.seeds == "all" and not (np.any(xa > 0) or np.any(xb > 0)):
            return Measurement(
                None,
                sizes,
                head,
                empty=f"no run of {self.a} or {self.b} ended above the task's minimum score: equal "
                "failure says nothing about the difference",
            )
        reps = strata_bootstrap(_iqm_diff, [sa, sb], settings.reps, rng_for(settings.seed, *key))
        ev = BootstrapEvidence(point, reps)
        low, high = ev.interval
        return Measurement(
            ev,
            sizes,
            f"{head} ({_fmt_iv(low, high, signed=True)}; {na} vs {nb} seeds)",
            resample=self.resample,
        )

    def resample(self, draws: Draws, floor: int) -> tuple[np.ndarray, np.ndarray]:
        """The statistic on resampled studies, and whether each could be tested (the converged seeds it
        compares reach ``floor``): two ``(reps,)`` arrays."""
        stats, testable = [], np.ones(draws.reps, dtype=bool)
        for v in (self.a, self.b):
            vals, masks = [], []
            for t, g in enumerate(draws.groups[v]):
                idx = draws.indices(v, t)
                vals.append(g.final_score[idx])
                masks.append(g.converged[idx] if self.seeds == "converged" else np.ones(idx.shape, bool))
            x, mask = np.concatenate(vals, axis=1), np.concatenate(masks, axis=1)
            stats.append(iqm(x[..., None]) if self.seeds == "all" else _masked_iqm(x, mask))
            testable &= mask.sum(axis=1) >= floor
        return stats[0] - stats[1], testable


def _poi_jackknife(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out P(X > Y) over ``x`` (runs of x) and over ``y``, in closed form from the pair kernel."""
    d = x[:, None] - y[None, :]
    k = (d > 0) + 0.5 * (d == 0)
    total = k.sum()
    jx = (total - k.sum(axis=1)) / ((x.size - 1) * y.size)
    jy = (total - k.sum(axis=0)) / (x.size * (y.size - 1))
    return jx, jy


@dataclass(frozen=True)
class ImprovementProbability(_Pair):
    """P(``a`` > ``b``) of final scores (ties count one half; the mean over the claim's tasks); BCa
    interval."""

    @property
    def label(self) -> str:
        return f"P({self.a} > {self.b})"

    def measure(self, groups, settings, key) -> Measurement:
        ga, gb = groups[self.a], groups[self.b]
        na, nb = sum(g.n for g in ga), sum(g.n for g in gb)
        sizes = {self.a: na, self.b: nb}
        xs = [g.final_score for g in ga]
        ys = [g.final_score for g in gb]
        point = float(np.mean([_poi(x, y) for x, y in zip(xs, ys, strict=True)]))
        head = f"P({self.a} > {self.b}) = {point:.2f}"
        if not any(np.any(x > 0) for x in xs + ys):
            return Measurement(
                None,
                sizes,
                head,
                empty=f"every run of {self.a} and {self.b} ended at the task's minimum score: equal failure "
                "says nothing about whether the change matters",
            )
        if min(na, nb) < 2:
            return Measurement(None, sizes, head + " (one seed: no interval)")
        reps, jacks = 0.0, ([], [])
        for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
            rngs = {"x": rng_for(settings.seed, *key, t, "x"), "y": rng_for(settings.seed, *key, t, "y")}
            arrays = {"x": x[:, None], "y": y[:, None]}
            reps = reps + poi_bootstraps(arrays, [("x", "y")], settings.reps, rngs=rngs)[("x", "y")]
            jx, jy = _poi_jackknife(x, y)
            # a leave-one-out value of the task mean: this task's value replaced by its jackknife value
            rest = point * len(xs) - _poi(x, y)
            jacks[0].append((rest + jx) / len(xs))
            jacks[1].append((rest + jy) / len(xs))
        ev = BootstrapEvidence(
            point,
            np.asarray(reps) / len(xs),
            method="bca",
            jackknife=(np.concatenate(jacks[0]), np.concatenate(jacks[1])),
        )
        low, high = ev.interval
        return Measurement(
            ev,
            sizes,
            f"{head} (BCa {_fmt_iv(low, high)}; {na} vs {nb} seeds)",
            resample=self.resample,
        )

    def resample(self, draws: Draws, floor: int) -> tuple[np.ndarray, np.ndarray]:
        """The statistic on resampled studies (``(reps,)``) and whether each could be tested (always)."""
        total = 0.0
        tasks = len(draws.groups[self.a])
        for t in range(tasks):
            ga, gb = draws.groups[self.a][t], draws.groups[self.b][t]
            wa = draw_counts(draws.indices(self.a, t), ga.n)
            wb = draw_counts(draws.indices(self.b, t), gb.n)
            total = total + poi_from_counts(ga.final_score, gb.final_score, wa, wb)
        return np.asarray(total) / tasks, np.ones(draws.reps, dtype=bool)


def _first_reach(curve: np.ndarray, level: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(batch, T) curves, (batch,) levels -> (batch,) env steps at which each curve first reaches its
    level, interpolated linearly between the evaluation before and the first one at or above it (inf if
    never). Interpolation makes the crossing a continuous quantity: on the raw evaluation grid a ratio of
    crossing steps takes few values, and its bootstrap and power are lumpy."""
    hit = curve >= level[:, None] - 1e-12
    j = hit.argmax(axis=1)
    rows = np.arange(curve.shape[0])
    prev = np.maximum(j - 1, 0)
    c0, c1 = curve[rows, prev], curve[rows, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where((j > 0) & (c1 > c0), (level - c0) / (c1 - c0), 1.0)
    t = steps[prev] + np.clip(frac, 0.0, 1.0) * (steps[j] - steps[prev])
    return np.where(hit.any(axis=1), t, np.inf)


@dataclass(frozen=True)
class SampleEfficiency:
    """Env steps ``fast``'s IQM curve needs to first reach ``level`` x ``slow``'s final IQM, divided by the
    steps ``slow``'s IQM curve needs (inf if ``fast`` never gets there); crossings interpolated between
    evaluations; one task; percentile interval from a bootstrap of whole curves (both variants
    resampled)."""

    fast: str
    slow: str
    level: float = 0.8
    min_final: float = 0.05  # below this final IQM the slow method does not learn: no level to compare at

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.slow, self.fast)

    @property
    def label(self) -> str:
        s, f = self.slow.upper(), self.fast.upper()
        return f"steps to {self.level:.0%} of {s}'s final IQM, {f} / {s}"

    def _ratio(self, steps: np.ndarray):
        """The statistic on batches of curves: ``(batch, runs, T)`` slow and fast -> ``(batch,)``."""

        def ratio(s_slow, s_fast):
            i_slow = iqm(np.moveaxis(s_slow, -1, 1)[..., None])  # (batch, T)
            i_fast = iqm(np.moveaxis(s_fast, -1, 1)[..., None])
            lvl = self.level * i_slow[:, -1]
            return _first_reach(i_fast, lvl, steps) / _first_reach(i_slow, lvl, steps)

        return ratio

    def _curves(self, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps (T,), slow curves (runs, T), fast curves (runs, T)) on the steps both groups have."""
        (gs,), (gf,) = groups[self.slow], groups[self.fast]
        steps = np.intersect1d(gs.steps, gf.steps)
        return steps, gs.curves[np.isin(gs.steps, steps)].T, gf.curves[np.isin(gf.steps, steps)].T

    def resample(self, draws: Draws, floor: int) -> tuple[np.ndarray, np.ndarray]:
        """The ratio on resampled studies (``(reps,)``; on at most ``CURVE_POWER_POINTS`` evaluation points,
        evenly picked, the last kept) and whether each could be tested (always)."""
        steps, cs, cf = self._curves(draws.groups)
        keep = np.unique(
            np.linspace(0, steps.size - 1, min(steps.size, CURVE_POWER_POINTS)).round().astype(int)
        )
        steps, cs, cf = steps[keep], cs[:, keep], cf[:, keep]
        ratio = self._ratio(steps)
        i_slow, i_fast = draws.indices(self.slow, 0), draws.indices(self.fast, 0)
        chunk = max(1, (1 << 22) // (2 * draws.n * steps.size))
        out = [
            ratio(cs[i_slow[j : j + chunk]], cf[i_fast[j : j + chunk]]) for j in range(0, draws.reps, chunk)
        ]
        return np.concatenate(out), np.ones(draws.reps, dtype=bool)

    def measure(self, groups, settings, key) -> Measurement:
        (gs,), (gf,) = groups[self.slow], groups[self.fast]
        sizes = {self.slow: gs.n, self.fast: gf.n}
        steps = np.intersect1d(gs.steps, gf.steps)
        S, F = self.slow.upper(), self.fast.upper()
        if steps.size < 2:
            return Measurement(
                None,
                sizes,
                f"{S} and {F} share fewer than two evaluation steps",
                empty="no curves to compare",
            )
        steps, cs, cf = self._curves(groups)  # (runs, T) curves on the common steps
        slow_final = float(iqm(cs[:, -1]))
        if slow_final < self.min_final:
            return Measurement(
                None,
                sizes,
                f"{S}'s final IQM is {slow_final:.3f}",
                empty=f"{S} does not learn (final IQM {slow_final:.3f} < {self.min_final}), so there is no "
                "level to compare sample efficiency at",
                extras={"slow_final_iqm": slow_final},
            )
        ratio = self._ratio(steps)
        point = float(ratio(cs[None], cf[None])[0])
        reps = strata_bootstrap(ratio, [[cs], [cf]], settings.curve_reps, rng_for(settings.seed, *key))
        ev = BootstrapEvidence(point, reps)
        low, high = ev.interval
        level = f"{self.level:.0%} of {S}'s final IQM ({slow_final:.2f})"
        if np.isfinite(point):
            text = f"{F}'s IQM curve reaches {level} after {point:.2f}x {S}'s steps ({_fmt_iv(low, high)})"
        else:
            text = f"{F}'s IQM curve never reaches {level} (ratio inf, {_fmt_iv(low, high)})"
        return Measurement(
            ev,
            sizes,
            text,
            resample=self.resample,
            resample_reps=CURVE_RESAMPLED_STUDIES,
            scale=np.log,
            extras={"slow_final_iqm": slow_final, "level": self.level * slow_final},
        )


# ----------------------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Part:
    """One thing a claim asserts: ``statistic`` lies in ``region`` ``(lo, hi)`` (None: unbounded side; the
    bounds themselves are outside)."""

    statistic: object
    region: tuple[float | None, float | None]


@dataclass(frozen=True)
class Claim:
    """A claim of the paper table: all of its ``parts`` hold. ``task``: the one task it is judged on, or
    None for every task that has all of its variants: judged on each such task separately (one row per
    task), or, with ``pooled``, on all of them at once (one statistic over every seed of every task)."""

    id: str
    text: str
    source: str
    parts: tuple[Part, ...]
    task: str | None = None
    pooled: bool = False

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v for p in self.parts for v in p.statistic.variants))


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "C1",
        "RLV learns visual pushing with less than half the samples SAC needs",
        "RLV abstract",
        (Part(SampleEfficiency("rlv", "sac"), (None, 0.5)),),
    ),
    Claim(
        "C2",
        "RLV converges on only ~5/10 seeds after 300 epochs on visual pushing",
        "RLMU sec. 4",
        (Part(ConvergenceRate("rlv"), (0.3, 0.7)),),
    ),
    Claim(
        "C3", "SAC converges on 70-80% of seeds", "RLMU sec. 4", (Part(ConvergenceRate("sac"), (0.7, 0.8)),)
    ),
    Claim(
        "C4",
        "RLMU (no paired data) beats RLV with paired data when all seeds are counted, and is worse "
        "on converged seeds only",
        "RLMU sec. 4, Fig. 3",
        (
            Part(ScoreDifference("rlmu", "rlv", "all"), (0.0, None)),
            Part(ScoreDifference("rlmu", "rlv", "converged"), (None, 0.0)),
        ),
    ),
    Claim(
        "C5",
        "negative jitter at ratio 0.5 gives more consistent results than RLV; ratio 1.0 is unstable",
        "RLMU sec. 3.2, Fig. 2",
        (
            Part(RateDifference("rlv_jitter5_half", "rlv"), (0.0, None)),
            Part(RateDifference("rlv_jitter5_half", "rlv_jitter5"), (0.0, None)),
        ),
    ),
    Claim(
        "C6",
        "reversed-video augmentation does not change RLV's performance",
        "RLMU sec. 3.2",
        (Part(ImprovementProbability("rlv_reverse", "rlv"), (0.36, 0.64)),),
    ),
    Claim(
        "C7",
        "negative reward on reversed segments fails to converge",
        "RLMU sec. 3.2",
        (Part(ConvergenceRate("rlv_negreward"), (None, 0.1)),),
    ),
    Claim(
        "C8",
        "VIRL: spatial + temporal reward beats either alone",
        "VIRL",
        (
            Part(ScoreDifference("virl_both", "virl_spatial"), (0.0, None)),
            Part(ScoreDifference("virl_both", "virl_temporal"), (0.0, None)),
        ),
        pooled=True,
    ),
)
CLAIMS_BY_ID: dict[str, Claim] = {c.id: c for c in CLAIMS}


# -------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ClaimResult:
    id: str
    claim: str
    source: str
    task: str
    statistic: str  # what ``value`` and ``interval`` measure (the part that decides the verdict)
    value: float
    interval: tuple[float, float]  # 95% interval of ``value``
    n_seeds: int  # seeds in the smallest group a part compares (converged seeds for a converged-only part)
    verdict: str  # one of VERDICTS
    seeds_needed: int | None  # inconclusive only: seeds per group for 80% power at the observed effect
    detail: str
    p_value: float = math.nan  # the claim's p-value (the smaller of support and contradiction), raw
    p_holm: float = math.nan  # the same after Holm's correction across the tested claims
    seeds_needed_reason: str = ""  # inconclusive without a number: why no number of seeds would do
    extras: dict = field(default_factory=dict)  # every part's figures (names -> numbers)

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
            "p_value": self.p_value,
            "p_holm": self.p_holm,
            "seeds_needed_reason": self.seeds_needed_reason,
            "extras": dict(self.extras),
        }


def _fmt_region(region) -> str:
    lo, hi = region
    if lo is None:
        return f"< {hi:g}"
    if hi is None:
        return f"> {lo:g}"
    return f"in [{lo:g}, {hi:g}]"


def _fmt_p(p: float) -> str:
    return "-" if not np.isfinite(p) else ("< 0.0001" if p < 1e-4 else f"{p:.4f}")


@dataclass
class _PartOutcome:
    part: Part
    m: Measurement
    untested: str  # "" when tested
    p_support: float = math.nan
    p_contra: float = math.nan


@dataclass
class _Pending:
    claim: Claim
    task: str
    parts: list[_PartOutcome]
    p_support: float
    p_contra: float
    groups: dict[str, list[GroupData]]  # variant -> its group on each task of the claim

    @property
    def p(self) -> float:
        ps = [p for p in (self.p_support, self.p_contra) if np.isfinite(p)]
        return min(ps) if ps else math.nan

    @property
    def direction(self) -> str:
        if not np.isfinite(self.p):
            return ""
        return "supported" if self.p == self.p_support else "contradicted"


def claim_tasks(claim: Claim, study: StudyData) -> list[list[str]] | ClaimResult:
    """The task sets ``claim`` is judged on in ``study`` (one per row of the table), or its "not measured"
    row when no task has all of its variants."""
    if claim.task is not None:
        missing = [v for v in claim.variants if study.get(claim.task, v) is None]
        return _not_measured(claim, claim.task, missing) if missing else [[claim.task]]
    tasks = [t for t in study.tasks() if all(study.get(t, v) is not None for v in claim.variants)]
    if not tasks:
        present = {v for _, v in study.groups}
        return _not_measured(
            claim, "any task", [v for v in claim.variants if v not in present] or list(claim.variants)
        )
    return [tasks] if claim.pooled else [[t] for t in tasks]


def _measure_claim(
    claim: Claim, study: StudyData, settings: Settings, tasks: list[str] | None = None
) -> _Pending | ClaimResult:
    """Measure and test ``claim`` on ``tasks`` (default: its first task set, ``claim_tasks``)."""
    if tasks is None:
        found = claim_tasks(claim, study)
        if isinstance(found, ClaimResult):
            return found
        tasks = found[0]
    groups = {v: [study.get(t, v) for t in tasks] for v in claim.variants}
    where = ",".join(tasks)
    outcomes = []
    for i, part in enumerate(claim.parts):
        m = part.statistic.measure(groups, settings, (claim.id, where, i))
        small = {g: n for g, n in m.sizes.items() if n < settings.min_seeds}
        if m.empty:
            untested = m.empty
        elif small:
            which = "converged seed" if getattr(part.statistic, "seeds", "all") == "converged" else "seed"
            untested = (
                "too few seeds: "
                + ", ".join(f"{g} has {_plural(n, which)}" for g, n in small.items())
                + f", fewer than the {settings.min_seeds} a verdict needs"
            )
        elif m.evidence is None:
            untested = "no interval"
        else:
            untested = ""
        o = _PartOutcome(part, m, untested)
        if m.evidence is not None and not m.empty:
            o.p_support, o.p_contra = region_pvalues(m.evidence, part.region)
        outcomes.append(o)
    tested = [o for o in outcomes if not o.untested]
    k = len(claim.parts)
    p_support = max(o.p_support for o in tested) if len(tested) == k else math.nan
    p_contra = min(1.0, k * min(o.p_contra for o in tested)) if tested else math.nan
    return _Pending(claim, where, outcomes, p_support, p_contra, groups)


def _not_measured(claim: Claim, task: str, missing: list[str]) -> ClaimResult:
    return ClaimResult(
        claim.id,
        claim.text,
        claim.source,
        task,
        "-",
        math.nan,
        (math.nan, math.nan),
        0,
        "not measured",
        None,
        f"the study has no runs of {', '.join(missing)} on {task}",
    )


class _NoPower(Exception):
    """The power cannot be estimated; the message says why."""


def _resampled_power(pend: _Pending, parts: list, verdict: str, alpha: float, n: int, settings: Settings):
    """Power at ``n`` seeds per group of the parts' joint ``verdict`` (all parts for "supported", any for
    "contradicted"), estimated on studies drawn from the observed groups: each part's statistic on each
    study, with an interval that reaches as far below and above the estimate as the ``alpha / 2`` and
    ``1 - alpha / 2`` quantiles of the statistic over the studies lie from its median (``+- z se`` for a
    normal statistic; a skewed one, such as C1's ratio, gets its real reach on each side), times
    ``sqrt(n_obs / (n_obs - 1))`` (the spread of the empirical distribution of ``n_obs`` seeds is short
    by that factor). A study whose part cannot be tested (too few converged seeds) gives no
    verdict. Where more than 5% of the estimates are infinite (C1: the level never reached) the
    approximation does not hold: ``_NoPower``."""
    if n < settings.min_seeds:
        return 0.0
    reps = min(o.m.resample_reps for o in parts)
    draws = Draws(pend.groups, n, reps, settings.seed, (pend.claim.id, "power"))
    passes = []
    for o in parts:
        v, ok = o.m.resample(draws, settings.min_seeds)
        lo, hi = o.part.region
        lo, hi = (-math.inf if lo is None else lo), (math.inf if hi is None else hi)
        if o.m.scale is not None:  # bounds of -inf/inf stay unbounded; log(0) = -inf likewise
            with np.errstate(divide="ignore"):
                v, lo, hi = o.m.scale(v), float(o.m.scale(max(lo, 0.0))), float(o.m.scale(hi))
        ok = ok & ~np.isnan(v)
        finite = ok & np.isfinite(v)
        if (ok & ~finite).sum() > 0.05 * ok.sum():
            raise _NoPower(
                f"{o.part.statistic.label} is infinite in {(ok & ~finite).mean():.0%} of studies resampled "
                "from this one (the level is never reached), which no normal interval describes"
            )
        if finite.sum() < 2:
            return 0.0
        n_obs = min(o.m.sizes.values())
        inflate = math.sqrt(n_obs / max(n_obs - 1, 1))
        q_lo, mid, q_hi = np.quantile(v[finite], [alpha / 2, 0.5, 1 - alpha / 2])
        down, up = (mid - q_lo) * inflate, (q_hi - mid) * inflate  # the interval's reach below and above
        with np.errstate(invalid="ignore"):
            if verdict == "supported":
                passes.append(ok & (v - down > lo) & (v + up < hi))
            else:
                passes.append(ok & ((v + up < lo) | (v - down > hi)))
    joint = np.logical_and.reduce(passes) if verdict == "supported" else np.logical_or.reduce(passes)
    return float(joint.mean())


def _seeds_needed(pend: _Pending, settings: Settings, alpha: float) -> tuple[int | None, str]:
    """Seeds per group from which every larger count gives the claim's verdict with 80% power at level
    ``alpha``, if the observed effect were the truth; or None and the reason no number would do.

    The direction is the one the estimates point to: every part inside its region -> supported (all parts
    at ``alpha``); some part outside -> contradicted (any of those parts at ``alpha / k``). Bootstrap
    statistics get their power from studies resampled from the observed groups (``_resampled_power``,
    jointly over the parts; the target is raised by two Monte Carlo standard errors so that the answer
    is not an artefact of the simulation); rates from exact enumeration, their parts combined by the
    Frechet bound ``sum P_i - (k - 1)`` (supported; it holds however the parts are correlated) or the
    most powerful part (contradicted).
    """
    k = len(pend.parts)
    inside, outside, unknown = [], [], []
    for o in pend.parts:
        lo, hi = o.part.region
        x = o.m.point
        if o.m.empty or np.isnan(x):
            unknown.append(o)
        elif (lo is not None and x == lo) or (hi is not None and x == hi):
            return None, (
                f"the estimate of {o.part.statistic.label} ({x:.3g}) is on the claim's boundary: no number "
                "of seeds decides a true effect of exactly that size"
            )
        else:
            (inside if (lo is None or x > lo) and (hi is None or x < hi) else outside).append(o)
    if unknown and not outside:  # support needs every part; a contradiction can come from any
        o = unknown[0]
        return None, o.m.empty or f"{o.part.statistic.label} has no estimate ({o.m.text})"
    floor = settings.min_seeds
    verdict, parts, level = ("contradicted", outside, alpha / k) if outside else ("supported", inside, alpha)
    target, monotone = POWER, True
    if all(o.m.resample is not None for o in parts):

        def power(n):
            return _resampled_power(pend, parts, verdict, level, n, settings)

        target += 2 * math.sqrt(POWER * (1 - POWER) / min(o.m.resample_reps for o in parts))
        max_n = RESAMPLE_MAX_N
    else:
        if verdict == "contradicted":
            parts = [o for o in parts if o.m.power is not None or o.m.resample is not None]
        missing = [o for o in parts if o.m.power is None and o.m.resample is None]
        if missing or not parts:
            return None, (missing or outside)[0].m.power_note or "no power model"

        def marginal(o, n):
            if o.m.power is not None:
                return o.m.power(n, o.part.region, verdict, level, floor)
            return _resampled_power(pend, [o], verdict, level, n, settings)

        def power(n):
            if verdict == "contradicted":
                return max(marginal(o, n) for o in parts)
            return sum(marginal(o, n) for o in parts) - (k - 1)

        max_n = min(o.m.max_n if o.m.power is not None else RESAMPLE_MAX_N for o in parts)
        monotone = all(o.m.monotone for o in parts if o.m.power is not None)
    try:
        n = stable_threshold(power, target, floor, max_n, monotone=monotone)
    except _NoPower as exc:
        return None, str(exc)
    return (n, "") if n is not None else (None, f"more than {max_n} seeds per group")


def _margin(o: _PartOutcome) -> float:
    """Distance of a part's estimate to the nearest bound of its region."""
    return min(abs(o.m.point - b) for b in o.part.region if b is not None)


def _result(
    pend: _Pending, p_holm: float, m_family: int, settings: Settings, alpha_needed: float | None
) -> ClaimResult:
    """The verdict of a measured claim; ``alpha_needed``: the level "seeds needed" is computed at (None:
    not computed)."""
    claim, parts = pend.claim, pend.parts
    # the part that decides: the weakest for support, the strongest for contradiction
    tested = [o for o in parts if not o.untested]
    if pend.direction == "contradicted":
        head = min(tested, key=lambda o: o.p_contra)
    elif tested:  # ties (several parts at p ~ 0): the estimate nearest its boundary
        head = max(tested, key=lambda o: (o.p_support, -_margin(o)))
    else:
        head = parts[0]
    verdict = pend.direction if np.isfinite(p_holm) and p_holm < ALPHA else "inconclusive"
    sentences = []
    for o in parts:
        s = f"{o.m.text}, claimed {_fmt_region(o.part.region)}"
        if o.untested:
            s += f" (not tested: {o.untested})"
        sentences.append(s)
    detail = "; ".join(sentences)
    if np.isfinite(pend.p):
        what = "support" if pend.direction == "supported" else "contradiction"
        detail += (
            f". p-value of the {what}: {_fmt_p(pend.p)}, after Holm's correction over {m_family} tested "
            f"claim{'s' if m_family != 1 else ''}: {_fmt_p(p_holm)}"
        )
        if verdict == "inconclusive" and pend.p < ALPHA:
            detail += f" (without the correction: {pend.direction})"
    needed, reason = None, ""
    if verdict == "inconclusive" and alpha_needed is not None:
        needed, reason = _seeds_needed(pend, settings, alpha_needed)
    sizes = [n for o in parts for n in o.m.sizes.values()]
    extras = {}
    for i, o in enumerate(parts, start=1):
        extras[f"part{i}_value"] = o.m.point
        extras[f"part{i}_low"], extras[f"part{i}_high"] = o.m.interval
        extras[f"part{i}_p_support"] = o.p_support
        extras[f"part{i}_p_contradict"] = o.p_contra
        for g, n in o.m.sizes.items():
            extras[f"part{i}_n_{g}"] = n
        extras.update({f"part{i}_{k}": v for k, v in o.m.extras.items()})
    return ClaimResult(
        claim.id,
        claim.text,
        claim.source,
        pend.task,
        head.part.statistic.label,
        head.m.point,
        head.m.interval,
        min(sizes) if sizes else 0,
        verdict,
        needed,
        detail,
        pend.p,
        p_holm,
        reason,
        extras,
    )


def seeds_needed(
    study: StudyData,
    claim: Claim,
    seed: int = 0,
    reps: int = 10_000,
    curve_reps: int = 2_000,
    min_seeds: int = DEFAULT_MIN_SEEDS,
    family: int = 1,
) -> tuple[int | None, str]:
    """Seeds per group from which ``claim``'s verdict has 80% power if ``study``'s observed effect were the
    truth, whatever the study's own verdict (a pilot study's answer for planning), in a Holm family of
    ``family`` claims; or None and the reason no number would do. The report prints the same number for
    an inconclusive claim (``evaluate_claims``)."""
    pend = _measure_claim(claim, study, Settings(int(seed), int(reps), int(curve_reps), int(min_seeds)))
    if isinstance(pend, ClaimResult):
        return None, pend.detail
    return _seeds_needed(
        pend, Settings(int(seed), int(reps), int(curve_reps), int(min_seeds)), ALPHA / family
    )


def evaluate_claims(
    study: StudyData,
    seed: int = 0,
    reps: int = 10_000,
    curve_reps: int = 2_000,
    min_seeds: int = DEFAULT_MIN_SEEDS,
    claims: Sequence[Claim] = CLAIMS,
    seeds_needed: bool = True,
) -> list[ClaimResult]:
    """Evaluate ``claims`` (default C1-C8) on ``study``; same ``seed`` -> identical results. A claim
    gives one row per task it is judged on (``claim_tasks``; the row's ``task`` names it).

    ``reps``: bootstrap repetitions for score statistics; ``curve_reps``: for C1's curve statistic.
    ``min_seeds``: fewest seeds per compared group a part may be tested on. Holm's correction runs over
    the claims with a p-value; "seeds needed" is computed at ``alpha / m`` for the ``m`` measured claims
    (Holm's strictest step), so the number holds whatever the other claims' p-values turn out to be.
    ``seeds_needed=False`` skips that power calculation (simulations of verdicts need only the verdicts).
    """
    if isinstance(min_seeds, bool) or not isinstance(min_seeds, int | np.integer) or min_seeds < 1:
        raise ValueError(f"min_seeds must be a positive integer, got {min_seeds!r}")
    settings = Settings(int(seed), int(reps), int(curve_reps), int(min_seeds))
    pending = []
    for c in claims:
        found = claim_tasks(c, study)
        if isinstance(found, ClaimResult):
            pending.append(found)
        else:
            pending += [_measure_claim(c, study, settings, tasks) for tasks in found]
    measured = [p for p in pending if isinstance(p, _Pending)]
    adjusted = dict(zip(map(id, measured), holm([p.p for p in measured]), strict=True))
    m_family = sum(np.isfinite(p.p) for p in measured)
    alpha_needed = ALPHA / max(1, len(measured))
    return [
        p
        if isinstance(p, ClaimResult)
        else _result(p, adjusted[id(p)], int(m_family), settings, alpha_needed if seeds_needed else None)
        for p in pending
    ]
