"""The reproduction check: a study against a reference study (``rlmu report STUDY --reference REF``).

For every (task, variant) both studies ran, three metrics of the final normalised scores are compared:
the IQM, the mean (each: difference study - reference with a 95% percentile interval from a bootstrap
that redraws each study's seeds independently, and the bootstrap p-value of "no difference") and the
convergence rate (Newcombe's interval of the difference, Fisher's exact test). Holm's correction runs over
every comparison of the check, so a faithful reproduction is flagged somewhere with probability at most
5%, however many variants it has. Verdicts:

- ``agree``: the difference's Holm-adjusted p-value is at least 0.05 (the two are consistent within
  their intervals; it is not proof of equality, and the interval says how large a difference is ruled
  out);
- ``disagree``: below 0.05: the study differs from the reference by more than chance explains;
- ``not compared``: a side has fewer than ``MIN_RUNS`` runs, or the two trained for different budgets
  (the final environment steps differ), which the reason names.

The reference's runs are aggregated in memory (its committed ``runs/`` folder, read with the same rules
as any study); nothing is written into it. The figures overlay the IQM curves (the reference dashed) and
put the two studies' intervals side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rlmu.report.aggregate import Aggregation  # noqa: E402
from rlmu.report.figures import DPI, Figure, palette  # noqa: E402
from rlmu.report.tables import curve_arrays, included_runs  # noqa: E402
from rlmu.stats.bootstrap import iqm_curves, percentile_interval, rng_for, two_sided_p  # noqa: E402
from rlmu.stats.convergence import fisher_exact, newcombe_difference, wilson_interval  # noqa: E402
from rlmu.stats.evidence import ALPHA, holm  # noqa: E402
from rlmu.stats.metrics import iqm  # noqa: E402
from rlmu.utils.io import atomic_write_bytes  # noqa: E402

MIN_RUNS = 3  # fewest runs per side for a comparison
METRICS = ("IQM", "mean", "convergence rate")
REFERENCE_DIR = "reference"  # where the check's table and figures go inside the study folder
COLUMNS = [
    "task",
    "variant",
    "metric",
    "study",
    "study_low",
    "study_high",
    "n_study",
    "reference",
    "reference_low",
    "reference_high",
    "n_reference",
    "diff",
    "diff_low",
    "diff_high",
    "p_value",
    "p_holm",
    "verdict",
    "reason",
]


@dataclass
class ReferenceCheck:
    reference: Path
    table: pd.DataFrame  # COLUMNS, one row per (task, variant, metric)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def disagreements(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == "disagree"]


def _scores(agg: Aggregation) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, float]]:
    """(task, variant) -> (final normalised scores, converged flags, largest final env steps)."""
    st = included_runs(agg, "all")
    out = {}
    for (task, variant), g in st.groupby(["task", "variant"], sort=True):
        out[(str(task), str(variant))] = (
            g["final_normalised"].to_numpy(float),
            g["converged"].to_numpy(bool),
            float(np.nanmax(g["final_env_steps"].to_numpy(float)))
            if g["final_env_steps"].notna().any()
            else np.nan,
        )
    return out


def _boot(x: np.ndarray, statistic, reps: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, x.size, size=(reps, x.size))
    return statistic(x[idx])


def _interval(values: np.ndarray) -> tuple[float, float]:
    low, high = percentile_interval(values, 1 - ALPHA)
    return float(low), float(high)


def _row(task, variant, metric, n_s, n_r, **values) -> dict:
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(task=task, variant=variant, metric=metric, n_study=n_s, n_reference=n_r, verdict="", reason="")
    row.update(values)
    return row


def compare(
    study: Aggregation, reference: Aggregation, reps: int = 10_000, seed: int = 0
) -> tuple[pd.DataFrame, list[str]]:
    """The comparison table (``COLUMNS``) and notes on what could not be compared."""
    s, r = _scores(study), _scores(reference)
    notes = []
    only_study = sorted(set(s) - set(r))
    only_ref = sorted(set(r) - set(s))
    if only_study:
        notes.append("not in the reference: " + ", ".join(f"{t}/{v}" for t, v in only_study))
    if only_ref:
        notes.append("in the reference, not in this study: " + ", ".join(f"{t}/{v}" for t, v in only_ref))
    stats = {
        "IQM": lambda a: np.asarray(iqm(a[..., None]), dtype=float).reshape(a.shape[:-1]),
        "mean": lambda a: a.mean(axis=-1),
    }
    rows = []
    for task, variant in sorted(set(s) & set(r)):
        (xs, cs, end_s), (xr, cr, end_r) = s[(task, variant)], r[(task, variant)]
        reason = ""
        if xs.size < MIN_RUNS or xr.size < MIN_RUNS:
            reason = f"fewer than {MIN_RUNS} runs (study {xs.size}, reference {xr.size})"
        elif np.isfinite(end_s) and np.isfinite(end_r) and end_s != end_r:
            reason = (
                f"different budgets: the study ends at {end_s:,.0f} env steps, the reference at {end_r:,.0f}"
            )
        for metric in METRICS:
            values = {"study": 0.0, "reference": 0.0, "diff": 0.0}
            if metric == "convergence rate":
                ks, kr = int(cs.sum()), int(cr.sum())
                values.update(study=ks / max(1, xs.size), reference=kr / max(1, xr.size))
                values["diff"] = values["study"] - values["reference"]
                if not reason:
                    _, sl, sh = wilson_interval(ks, xs.size)
                    _, rl, rh = wilson_interval(kr, xr.size)
                    d, dl, dh = newcombe_difference(ks, xs.size, kr, xr.size)
                    p = fisher_exact(ks, xs.size, kr, xr.size)
            else:
                stat = stats[metric]
                values.update(study=float(stat(xs[None])[0]), reference=float(stat(xr[None])[0]))
                values["diff"] = values["study"] - values["reference"]
                if not reason:
                    bs = _boot(xs, stat, reps, rng_for(seed, "reference", task, variant, metric, "study"))
                    br = _boot(xr, stat, reps, rng_for(seed, "reference", task, variant, metric, "reference"))
                    (sl, sh), (rl, rh), (dl, dh) = _interval(bs), _interval(br), _interval(bs - br)
                    d, p = values["diff"], two_sided_p(bs - br, 0.0)
            if reason:
                values.update(verdict="not compared", reason=reason)
            else:
                values.update(
                    study_low=sl,
                    study_high=sh,
                    reference_low=rl,
                    reference_high=rh,
                    diff=d,
                    diff_low=dl,
                    diff_high=dh,
                    p_value=p,
                )
            rows.append(_row(task, variant, metric, xs.size, xr.size, **values))
    table = pd.DataFrame(rows, columns=COLUMNS)
    tested = table["verdict"] == ""
    if tested.any():
        table.loc[tested, "p_holm"] = holm(table.loc[tested, "p_value"].tolist())
        table.loc[tested, "verdict"] = np.where(table.loc[tested, "p_holm"] < ALPHA, "disagree", "agree")
    return table, notes


def _curves_figure(study: Aggregation, reference: Aggregation, reps: int, seed: int) -> plt.Figure | None:
    cs, cr = curve_arrays(study, "all"), curve_arrays(reference, "all")
    tasks = sorted(set(cs) & set(cr))
    if not tasks:
        return None
    variants = sorted({v for t in tasks for v in set(cs[t]) & set(cr[t])})
    if not variants:
        return None
    colours = palette(variants)
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(6.2 * len(tasks), 3.8), squeeze=False, layout="constrained"
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        for v in sorted(set(cs[task]) & set(cr[task])):
            for curves, style, who in ((cs, "-", "study"), (cr, "--", "reference")):
                steps, y = curves[task][v]
                point, low, high = iqm_curves({v: y}, reps=reps, seed=seed)[v]
                ax.plot(
                    steps / 1000.0, point, style, color=colours[v], lw=2, label=f"{v} ({who}, n={len(y)})"
                )
                if who == "study":
                    ax.fill_between(steps / 1000.0, low, high, color=colours[v], alpha=0.15, lw=0)
        ax.set_title(task)
        ax.set_xlabel("environment steps (thousands)")
        ax.set_ylabel("IQM normalised return")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    fig.suptitle("IQM curves: this study (solid, 95% band) and the reference (dashed)")
    return fig


def _intervals_figure(table: pd.DataFrame) -> plt.Figure | None:
    shown = table[table["study_low"].notna()]
    if shown.empty:
        return None
    labels = [f"{t}/{v}" for t, v in dict.fromkeys(zip(shown["task"], shown["variant"], strict=True))]
    fig, axes = plt.subplots(
        1,
        len(METRICS),
        figsize=(4.2 * len(METRICS), 0.5 * len(labels) + 1.6),
        squeeze=False,
        layout="constrained",
    )
    for ax, metric in zip(axes[0], METRICS, strict=True):
        m = shown[shown["metric"] == metric]
        for i, label in enumerate(labels):
            row = m[[f"{t}/{v}" == label for t, v in zip(m["task"], m["variant"], strict=True)]]
            if row.empty:
                continue
            row = row.iloc[0]
            colour = "tab:red" if row["verdict"] == "disagree" else "black"
            for offset, who, c in ((-0.15, "study", colour), (0.15, "reference", "grey")):
                ax.plot([row[f"{who}_low"], row[f"{who}_high"]], [i + offset] * 2, color=c, lw=3)
                ax.plot([row[who]], [i + offset], "o", color=c, ms=5)
        ax.set_yticks(range(len(labels)), labels if ax is axes[0][0] else [""] * len(labels))
        ax.invert_yaxis()
        ax.set_xlim(-0.02, 1.02)
        ax.set_title(metric)
    fig.suptitle("95% intervals: this study (upper, red where it disagrees) and the reference (lower, grey)")
    return fig


def reference_check(
    study_dir: Path,
    study: Aggregation,
    reference_dir: Path,
    reference: Aggregation,
    reps: int = 10_000,
    curve_reps: int = 1_000,
    seed: int = 0,
) -> ReferenceCheck:
    """Compare, write ``STUDY/reference/comparison.csv`` and the figures, and return the check."""
    table, notes = compare(study, reference, reps=reps, seed=seed)
    out = Path(study_dir) / REFERENCE_DIR
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "comparison.csv", table.to_csv(index=False, float_format="%.6g").encode())
    figures = []
    drawn = (
        (
            "reference_curves",
            _curves_figure(study, reference, curve_reps, seed),
            "IQM curves against the reference",
        ),
        ("reference_intervals", _intervals_figure(table), "Intervals beside the reference's"),
    )
    for name, fig, title in drawn:
        if fig is None:
            continue
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        plt.close(fig)
        atomic_write_bytes(out / f"{name}.png", buf.getvalue())
        figures.append(Figure(name, "reference", None, title, f"reference: {reference_dir}"))
    return ReferenceCheck(Path(reference_dir), table, figures, notes)
