"""The statistics step (``rlmu stats STUDY_DIR``): tables computed with ``rlmu.stats`` from the aggregate.

Every table exists in two views (the RLMU report's Fig. 2/3 (a) and (b)): ``all`` seeds (every included
run; a diverged run counts as a failure, with the task's minimum score) and ``converged`` seeds only.
Convergence rates exist only in the ``all`` view (among converged seeds the rate is 1 by definition).

Scopes: each task on its own, plus ``all tasks`` when the study has several tasks and every variant has
the same number of runs in each task (the stratified bootstrap needs a ``runs x tasks`` matrix).

Output files in ``STUDY_DIR/stats/`` (CSV and Markdown each): ``aggregates``, ``poi`` (probability of
improvement for every ordered pair, with its bootstrap p-value of P = 0.5 and that p-value after Holm's
correction over the pairs of its view and scope), ``profiles``, ``curves`` (IQM sample-efficiency curves),
``convergence``, ``convergence_pairs`` (Fisher's exact test, raw and Holm-adjusted over the task's pairs),
``claims``; and ``meta.json`` (parameters, input fingerprint, notes). A variant with one run has no
interval (empty ``low``/``high``). Same aggregate + same seed and repetitions -> byte-identical files.

This module also does all the reshaping of the aggregate for ``rlmu.stats``: ``final_scores`` and
``curve_arrays`` for the tables and figures, ``study_data`` for the claims.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rlmu.report.aggregate import INCLUDED, Aggregation
from rlmu.report.render import environment, table_data
from rlmu.stats.bootstrap import aggregate_intervals, iqm_curves, probability_of_improvement
from rlmu.stats.claims import DEFAULT_MIN_SEEDS, ClaimResult, GroupData, StudyData, evaluate_claims
from rlmu.stats.convergence import pairwise_fisher, wilson_interval
from rlmu.stats.evidence import holm
from rlmu.stats.metrics import AGGREGATES
from rlmu.stats.profiles import performance_profiles
from rlmu.tasks import get_task
from rlmu.utils.io import atomic_write_json, atomic_write_text

STATS_DIR = "stats"
META = "meta.json"
VIEWS: dict[str, str] = {"all": "all seeds", "converged": "converged seeds only"}
ALL_TASKS = "all tasks"
TABLES = ("aggregates", "poi", "profiles", "curves", "convergence", "convergence_pairs", "claims")
_MAX_CURVE_POINTS = 300
# Columns of each table, so that an empty table is still a well-formed CSV.
COLUMNS: dict[str, list[str]] = {
    "aggregates": ["view", "scope", "variant", "metric", "point", "low", "high", "n_runs", "n_tasks"],
    "poi": ["view", "scope", "x", "y", "point", "low", "high", "n_runs_x", "n_runs_y", "p_value", "p_holm"],
    "profiles": ["view", "scope", "variant", "tau", "point", "low", "high"],
    "curves": ["view", "task", "variant", "env_steps", "point", "low", "high", "n_runs"],
    "convergence": ["task", "variant", "converged", "n", "rate", "low", "high", "threshold"],
    "convergence_pairs": [
        "task",
        "a",
        "b",
        "rate_a",
        "rate_b",
        "diff",
        "diff_low",
        "diff_high",
        "p_value",
        "p_holm",
    ],
    "claims": [
        "id",
        "claim",
        "source",
        "task",
        "statistic",
        "value",
        "low",
        "high",
        "n_seeds",
        "verdict",
        "seeds_needed",
        "detail",
        "p_value",
        "p_holm",
        "seeds_needed_reason",
    ],
}


@dataclass
class StatsParams:
    seed: int = 0
    reps: int = 50_000  # aggregate metrics and probability of improvement
    curve_reps: int = 2_000  # IQM curves and performance profiles (one interval per point)
    confidence: float = 0.95
    profile_points: int = 51  # thresholds tau evenly spaced in [0, 1] (normalised score)
    min_seeds: int = DEFAULT_MIN_SEEDS  # fewest seeds per group a claim verdict may rest on

    def validate(self) -> None:
        for name in ("reps", "curve_reps", "profile_points", "min_seeds"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass
class StatsResult:
    tables: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)


def included_runs(agg: Aggregation, view: str) -> pd.DataFrame:
    """Run-status rows entering the statistics of ``view`` (sorted by task, variant, seed)."""
    st = agg.status[agg.status["category"] == INCLUDED]
    if view == "converged":
        st = st[st["converged"] == True]  # noqa: E712  (object column holding True/False/None)
    return st.sort_values(["task", "variant", "seed"]).reset_index(drop=True)


def final_scores(agg: Aggregation, view: str, notes: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """scope -> variant -> normalised final scores ``(runs, tasks)``."""
    st = included_runs(agg, view)
    out: dict[str, dict[str, np.ndarray]] = {}
    for task, g in st.groupby("task", sort=True):
        out[task] = {
            v: gv["final_normalised"].to_numpy(float)[:, None] for v, gv in g.groupby("variant", sort=True)
        }
    tasks = sorted(out)
    if len(tasks) > 1:
        variants = sorted(set().union(*(out[t] for t in tasks)))
        joint, left_out = {}, {}
        for v in variants:
            counts = [len(out[t][v]) if v in out[t] else 0 for t in tasks]
            if len(set(counts)) == 1 and counts[0] > 0:
                joint[v] = np.concatenate([out[t][v] for t in tasks], axis=1)
            else:
                key = ", ".join(f"{t} {c}" for t, c in zip(tasks, counts, strict=True))
                left_out.setdefault(key, []).append(v)
        if left_out:
            # One note for all of them, grouped by their runs per task: the reason is the same.
            n_out = sum(len(vs) for vs in left_out.values())
            groups = "; ".join(f"{', '.join(vs)} ({key})" for key, vs in left_out.items())
            notes.append(
                f"{VIEWS[view]}: the '{ALL_TASKS}' scope pools each variant's final scores over "
                f"{', '.join(tasks)} into a runs x tasks matrix, so it needs the same number of runs of the "
                f"variant on every task. Left out of it ({n_out} of {len(variants)} variants; runs per "
                f"task in brackets): {groups}. Their per-task statistics are unaffected."
                + ("" if joint else f" No variant is left in the '{ALL_TASKS}' scope, so it is not shown.")
            )
        if joint:
            out[ALL_TASKS] = joint
    return out


def curve_arrays(agg: Aggregation, view: str) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """task -> variant -> (env_steps grid (T,), normalised scores (runs, T)), runs in ``included_runs`` order.

    Runs are aligned on env_steps by linear interpolation onto the variant's grid: the evaluation points of
    its runs, up to the end of its shortest completed run (at most ``_MAX_CURVE_POINTS`` points, evenly
    spaced when there are more). A diverged run is a failure from its divergence on: beyond its last
    recorded evaluation its curve is the task's minimum (normalised 0), and a run that diverged before its
    first evaluation is at the minimum throughout.
    """
    st = included_runs(agg, view)
    rows = agg.runs[agg.runs["included"]]
    by_run = {key: r for key, r in rows.groupby(["task", "variant", "seed"], sort=False)}
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for (task, variant), g in st.groupby(["task", "variant"], sort=True):
        spec = get_task(str(task))
        floor = float(spec.normalise(spec.min_return))
        curves = []
        for seed, status in zip(g["seed"], g["status"], strict=True):
            r = by_run.get((task, variant, int(seed)))
            if r is None:  # diverged before its first evaluation
                curves.append((np.empty(0), np.empty(0), status))
            else:
                curves.append(
                    (r["env_steps"].to_numpy(float), r["normalised_return"].to_numpy(float), status)
                )
        completed = g["status"] == "completed"
        ends = g.loc[completed, "final_env_steps"] if completed.any() else g["final_env_steps"]
        points = [x for x, _, _ in curves if x.size]
        if ends.isna().all() or not points:
            continue  # no run of the group has an evaluation: no curve to draw
        grid = np.unique(np.concatenate(points))
        grid = grid[grid <= float(ends.min())]
        if len(grid) > _MAX_CURVE_POINTS:
            grid = np.linspace(grid[0], grid[-1], _MAX_CURVE_POINTS)
        y = np.stack(
            [
                np.interp(grid, x, v, right=floor if status == "diverged" else v[-1])
                if x.size
                else np.full(grid.size, floor)
                for x, v, status in curves
            ]
        )
        out.setdefault(task, {})[variant] = (grid, y)
    return out


def study_data(agg: Aggregation) -> StudyData:
    """The claims' input: per (task, variant) the included runs' final scores, convergence flags and
    curves, counted exactly as the tables and figures count them (``final_normalised``, in which a
    diverged run has the minimum; the aggregation's convergence flags; curves from ``curve_arrays``)."""
    st = included_runs(agg, "all")
    curves = curve_arrays(agg, "all")
    groups = {}
    for (task, variant), g in st.groupby(["task", "variant"], sort=True):
        grid, y = curves.get(task, {}).get(variant, (np.empty(0), np.empty((len(g), 0))))
        groups[(str(task), str(variant))] = GroupData(
            task=str(task),
            variant=str(variant),
            seeds=g["seed"].to_numpy(dtype=int),
            final_score=g["final_normalised"].to_numpy(dtype=float),
            converged=(g["converged"] == True).to_numpy(dtype=bool),  # noqa: E712  (object column)
            steps=np.asarray(grid, dtype=float),
            curves=np.asarray(y, dtype=float).T,
            epochs=int(g["epochs_in_csv"].max()),
        )
    return StudyData(groups)


def compute_stats(agg: Aggregation, params: StatsParams | None = None) -> StatsResult:
    """Compute every table; pure (no I/O)."""
    params = params or StatsParams()
    params.validate()
    notes: list[str] = []
    rows = {name: [] for name in TABLES}
    taus = np.linspace(0.0, 1.0, int(params.profile_points))
    for view in VIEWS:
        scores = final_scores(agg, view, notes)
        for scope, by_variant in scores.items():
            n_tasks = next(iter(by_variant.values())).shape[1]
            intervals = aggregate_intervals(
                by_variant, AGGREGATES, reps=params.reps, confidence=params.confidence, seed=params.seed
            )
            for v, metrics in intervals.items():
                for m, iv in metrics.items():
                    rows["aggregates"].append(
                        dict(
                            view=view,
                            scope=scope,
                            variant=v,
                            metric=m,
                            point=iv.point,
                            low=iv.low,
                            high=iv.high,
                            n_runs=by_variant[v].shape[0],
                            n_tasks=n_tasks,
                        )
                    )
            if len(by_variant) > 1:
                # P(Y > X) = 1 - P(X > Y) on every resample (ties count one half on both sides), so each
                # unordered pair is bootstrapped once and its reverse is derived exactly. Every pair is a
                # test of P = 0.5: Holm's correction runs over the unordered pairs of the view and scope.
                names = sorted(by_variant)
                pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
                poi = probability_of_improvement(
                    by_variant, pairs=pairs, reps=params.reps, confidence=params.confidence, seed=params.seed
                )
                adjusted = dict(zip(poi, holm([iv.p_value for iv in poi.values()]), strict=True))
                for (a, b), iv in poi.items():
                    for x, y, point, low, high in (
                        (a, b, iv.point, iv.low, iv.high),
                        (b, a, 1.0 - iv.point, 1.0 - iv.high, 1.0 - iv.low),
                    ):
                        rows["poi"].append(
                            dict(
                                view=view,
                                scope=scope,
                                x=x,
                                y=y,
                                point=point,
                                low=low,
                                high=high,
                                n_runs_x=by_variant[x].shape[0],
                                n_runs_y=by_variant[y].shape[0],
                                p_value=iv.p_value,
                                p_holm=adjusted[(a, b)],
                            )
                        )
            profiles = performance_profiles(
                by_variant, taus, reps=params.curve_reps, confidence=params.confidence, seed=params.seed
            )
            for v, (p, lo, hi) in profiles.items():
                for k, tau in enumerate(taus):
                    rows["profiles"].append(
                        dict(
                            view=view,
                            scope=scope,
                            variant=v,
                            tau=float(tau),
                            point=float(p[k]),
                            low=float(lo[k]),
                            high=float(hi[k]),
                        )
                    )
        for task, by_variant in curve_arrays(agg, view).items():
            res = iqm_curves(
                {v: y for v, (_, y) in by_variant.items()},
                reps=params.curve_reps,
                confidence=params.confidence,
                seed=params.seed,
            )
            for v, (p, lo, hi) in res.items():
                grid, y = by_variant[v]
                for k in range(len(grid)):
                    rows["curves"].append(
                        dict(
                            view=view,
                            task=task,
                            variant=v,
                            env_steps=float(grid[k]),
                            point=float(p[k]),
                            low=float(lo[k]),
                            high=float(hi[k]),
                            n_runs=y.shape[0],
                        )
                    )
        if view == "converged":
            all_variants = set(included_runs(agg, "all")["variant"])
            missing = sorted(all_variants - set(included_runs(agg, view)["variant"]))
            if missing and len(missing) == len(all_variants):
                notes.append(
                    f"{VIEWS[view]}: no run of any variant converged, so this view is empty "
                    f"(no figures or tables for it)"
                )
            elif missing:
                notes.append(
                    f"{VIEWS[view]}: no converged seed for {', '.join(missing)}; left out of this view"
                )
    # Convergence (all seeds only). Counts come from the aggregation's per-run decision, so a diverged
    # run is not converged whatever its last return was.
    st = included_runs(agg, "all")
    for task, gt in st.groupby("task", sort=True):
        counts = []
        for v, g in gt.groupby("variant", sort=True):
            k, n = int((g["converged"] == True).sum()), len(g)  # noqa: E712
            rate, lo, hi = wilson_interval(k, n, params.confidence)
            counts.append(dict(method=v, converged=k, n=n))
            rows["convergence"].append(
                dict(
                    task=task,
                    variant=v,
                    converged=k,
                    n=n,
                    rate=rate,
                    low=lo,
                    high=hi,
                    threshold=agg.thresholds.get(task, np.nan),
                )
            )
        if len(counts) > 1:
            pairs = pairwise_fisher(pd.DataFrame(counts), confidence=params.confidence)
            pairs["p_holm"] = holm(pairs["p_value"].tolist())  # across the task's pairs
            for r in pairs.to_dict("records"):
                rows["convergence_pairs"].append({"task": task, **r})
    tables = {name: pd.DataFrame(r) if r else pd.DataFrame(columns=COLUMNS[name]) for name, r in rows.items()}
    tables["claims"] = _claims_rows(agg, params, notes)
    return StatsResult(tables=tables, notes=notes)


def claims_frame(results: list[ClaimResult]) -> pd.DataFrame:
    """One row per claim result, the ``claims`` table's columns (``ClaimResult.to_dict`` without extras)."""
    if not results:
        return pd.DataFrame(columns=COLUMNS["claims"])
    df = pd.DataFrame([r.to_dict() for r in results]).reindex(columns=COLUMNS["claims"])
    df["seeds_needed"] = df["seeds_needed"].astype("Int64")
    return df


def _claims_rows(agg: Aggregation, params: StatsParams, notes: list[str]) -> pd.DataFrame:
    """Claims C1-C8 (``rlmu.stats.claims``), evaluated on all included seeds.

    Claims have no converged-only view of their own: C4 compares both views inside the claim, and the
    convergence-rate claims are meaningless among converged seeds.
    """
    if (agg.status["category"] == INCLUDED).sum() == 0:
        notes.append("claims: no included runs, no claim can be evaluated")
        return pd.DataFrame(columns=COLUMNS["claims"])
    results = evaluate_claims(
        study_data(agg),
        seed=params.seed,
        reps=params.reps,
        curve_reps=params.curve_reps,
        min_seeds=int(params.min_seeds),
    )
    return claims_frame(results)


# ----------------------------------------------------------------------------------------- writing


def markdown_views(name: str, df: pd.DataFrame) -> str:
    """A table's Markdown file: one section per view when the table has a ``view`` column."""
    if "view" in df.columns:
        views = [(label, table_data(df[df["view"] == v].drop(columns="view"))) for v, label in VIEWS.items()]
        return environment().get_template("stats_table.md.j2").render(name=name, views=views)
    return environment().get_template("stats_table.md.j2").render(name=name, views=[], table=table_data(df))


def write_stats(
    study_dir: str | Path, result: StatsResult, params: StatsParams, fingerprint: str, code: str = ""
) -> Path:
    """Write every table (CSV and Markdown) and ``meta.json`` (parameters, input fingerprint, the hash of
    the statistics code, notes) into ``stats/``."""
    out = Path(study_dir) / STATS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name, df in result.tables.items():
        atomic_write_text(
            out / f"{name}.csv", df.to_csv(index=False, lineterminator="\n", float_format="%.10g")
        )
        atomic_write_text(out / f"{name}.md", markdown_views(name, df))
    atomic_write_json(
        out / META,
        {"params": asdict(params), "fingerprint": fingerprint, "code": code, "notes": result.notes},
    )
    return out


def load_stats(study_dir: str | Path) -> tuple[dict[str, pd.DataFrame], dict]:
    out = Path(study_dir) / STATS_DIR
    tables = {}
    for name in TABLES:
        path = out / f"{name}.csv"
        try:
            tables[name] = pd.read_csv(path, keep_default_na=False, na_values=[""])
        except pd.errors.EmptyDataError:
            tables[name] = pd.DataFrame()
    meta = json.loads((out / META).read_text())
    return tables, meta
