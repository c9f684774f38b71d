"""The report's figures (seaborn/matplotlib, Agg backend, PNG), drawn from the statistics tables.

Every figure except the convergence rates exists twice, as in the RLMU report's Fig. 2 and 3:
``{name}_all.png`` (a: all seeds) and ``{name}_converged.png`` (b: converged seeds only). The two share
axis limits, and a variant keeps its colour in every figure, so (a) and (b) can be compared at a glance.
Convergence rates are drawn once (among converged seeds the rate is 1 by definition).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from rlmu.report.tables import VIEWS  # noqa: E402
from rlmu.utils.io import atomic_write_bytes  # noqa: E402

FIGURES_DIR = "figures"
DPI = 110
# Above this many variant pairs an interval plot gets unreadably tall: draw a matrix instead.
_MAX_POI_PAIRS = 21


@dataclass(frozen=True)
class Figure:
    name: str  # file stem, e.g. "curves_all"
    kind: str  # curves | aggregates | poi | profiles | convergence
    view: str | None  # "all" / "converged" / None
    title: str
    caption: str


def palette(variants) -> dict[str, tuple]:
    """A fixed colour per variant (sorted names), colour-blind safe up to 10 variants."""
    names = sorted(set(variants))
    colours = (
        sns.color_palette("colorblind", len(names))
        if len(names) <= 10
        else sns.color_palette("husl", len(names))
    )
    return dict(zip(names, colours, strict=True))


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    # No timestamp or software metadata: same tables -> same bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _title(kind: str, view: str) -> str:
    part = "(a)" if view == "all" else "(b)"
    return f"{kind}: {part} {VIEWS[view]}"


def _band_alpha(n_variants: int) -> float:
    # Many overlapping bands turn into a brown wash: fainter bands when there are many variants.
    return 0.2 if n_variants <= 4 else 0.08


def _outside_legend(ax) -> None:
    # Outside the axes: curves and bands are never hidden behind the legend.
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False, borderaxespad=0)


def plot_curves(curves: pd.DataFrame, view: str, colours, xmax: dict) -> plt.Figure:
    tasks = sorted(curves["task"].unique())
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(6.2 * len(tasks), 3.8), squeeze=False, layout="constrained"
    )
    variants = sorted(curves["variant"].unique())
    for ax, task in zip(axes[0], tasks, strict=True):
        for v in variants:
            c = curves[(curves["task"] == task) & (curves["variant"] == v)]
            if c.empty:
                continue
            x = c["env_steps"].to_numpy() / 1000.0
            n = int(c["n_runs"].iloc[0])
            ax.plot(x, c["point"], color=colours[v], lw=2, label=f"{v} (n={n})")
            ax.fill_between(x, c["low"], c["high"], color=colours[v], alpha=_band_alpha(len(variants)), lw=0)
        ax.set_title(task)
        ax.set_xlabel("environment steps (thousands)")
        ax.set_ylabel("IQM normalised return")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(0, xmax.get(task, None))
        _outside_legend(ax)
    fig.suptitle(_title("IQM sample-efficiency curves", view))
    return fig


def plot_aggregates(agg: pd.DataFrame, view: str, colours) -> plt.Figure:
    scopes = list(dict.fromkeys(agg["scope"]))
    metrics = list(dict.fromkeys(agg["metric"]))
    # Each scope lists only its own variants (a variant run on one task only has no row elsewhere).
    scope_variants = {sc: sorted(agg.loc[agg["scope"] == sc, "variant"].unique()) for sc in scopes}
    # A 2-column grid of metric panels per scope keeps the labels legible at half page width.
    ncols = min(2, len(metrics))
    rows_per_scope = -(-len(metrics) // ncols)
    nrows = rows_per_scope * len(scopes)
    heights = [0.32 * len(scope_variants[sc]) + 0.9 for sc in scopes for _ in range(rows_per_scope)]
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(7.0, sum(heights) + 0.4),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"height_ratios": heights},
    )
    for i, scope in enumerate(scopes):
        variants = scope_variants[scope]
        for j, m in enumerate(metrics):
            ax = axes[i * rows_per_scope + j // ncols, j % ncols]
            d = agg[(agg["scope"] == scope) & (agg["metric"] == m)].set_index("variant")
            for k, v in enumerate(variants):
                if v not in d.index:
                    continue
                r = d.loc[v]
                ax.barh(k, r["high"] - r["low"], left=r["low"], height=0.6, color=colours[v], alpha=0.75)
                ax.vlines(r["point"], k - 0.3, k + 0.3, color="black", lw=1.5)
            ax.set_yticks(
                range(len(variants)),
                [f"{v} (n={int(d.loc[v, 'n_runs'])})" if v in d.index else v for v in variants],
            )
            ax.set_ylim(len(variants) - 0.5, -0.5)
            ax.set_xlim(-0.02, 1.02)
            ax.set_title(m if len(scopes) == 1 else f"{m} ({scope})", fontsize=10)
            ax.set_xlabel(
                "normalised score" + (" (lower is better)" if "gap" in m.lower() else ""), fontsize=8
            )
            ax.tick_params(labelsize=8)
            ax.grid(axis="y", visible=False)
    for i in range(len(scopes)):  # empty cells of an odd number of metrics
        for j in range(len(metrics), rows_per_scope * ncols):
            axes[i * rows_per_scope + j // ncols, j % ncols].set_visible(False)
    fig.suptitle(_title("Final normalised return, point and 95% interval", view))
    return fig


def plot_poi(poi: pd.DataFrame, view: str) -> plt.Figure:
    scopes = list(dict.fromkeys(poi["scope"]))
    # Each scope shows only the variants it compares (a variant run on one task only is absent elsewhere).
    scope_variants = {
        sc: sorted(set(poi.loc[poi["scope"] == sc, "x"]) | set(poi.loc[poi["scope"] == sc, "y"]))
        for sc in scopes
    }
    n_max = max(len(v) for v in scope_variants.values())
    n_shown = n_max * (n_max - 1) // 2  # pairs in the largest scope
    if n_shown <= _MAX_POI_PAIRS:
        fig, axes = plt.subplots(
            1,
            len(scopes),
            figsize=(6.2 * len(scopes), 0.4 * n_shown + 1.4),
            squeeze=False,
            layout="constrained",
        )
        for ax, scope in zip(axes[0], scopes, strict=True):
            d = poi[poi["scope"] == scope].set_index(["x", "y"])
            vs = scope_variants[scope]
            shown = [(a, b) for i, a in enumerate(vs) for b in vs[i + 1 :] if (a, b) in d.index]
            for k, p in enumerate(shown):
                r = d.loc[p]
                ax.barh(k, r["high"] - r["low"], left=r["low"], height=0.6, color="tab:blue", alpha=0.6)
                ax.vlines(r["point"], k - 0.3, k + 0.3, color="black", lw=1.5)
            ax.axvline(0.5, color="grey", ls="--", lw=1)
            ax.set_yticks(range(len(shown)), [f"P({a} > {b})" for a, b in shown])
            ax.set_ylim(len(shown) - 0.5, -0.5)
            ax.set_xlim(0, 1)
            ax.set_xlabel("probability of improvement")
            ax.set_title(scope)
    else:
        fig, axes = plt.subplots(
            1,
            len(scopes),
            figsize=(0.6 * n_max * len(scopes) + 2.5, 0.55 * n_max + 1.5),
            squeeze=False,
            layout="constrained",
            # cells of one size in every panel: a scope with few variants gets a narrow panel
            gridspec_kw={"width_ratios": [len(scope_variants[sc]) + 3 for sc in scopes]},
        )
        for ax, scope in zip(axes[0], scopes, strict=True):
            d = poi[poi["scope"] == scope]
            variants = scope_variants[scope]
            mat = d.pivot(index="x", columns="y", values="point").reindex(index=variants, columns=variants)
            # significance after Holm's correction over the scope's pairs (every pair is tested at once)
            sig = d.assign(s=(d["p_holm"] < 0.05).astype(float))
            sig = sig.pivot(index="x", columns="y", values="s").reindex(index=variants, columns=variants)
            labels = mat.map(lambda x: "" if pd.isna(x) else f"{x:.2f}")
            labels = labels.where(sig.fillna(0.0).to_numpy() == 0.0, labels + "*")
            sns.heatmap(
                mat,
                ax=ax,
                vmin=0,
                vmax=1,
                cmap="RdBu_r",
                center=0.5,
                annot=labels,
                fmt="",
                annot_kws={"fontsize": 7},
                cbar_kws={"label": "P(row > column)"},
                square=True,
            )
            ax.grid(False)  # the theme's grid would draw through the cells
            ax.tick_params(axis="y", rotation=0)
            ax.set_xlabel("Y")
            ax.set_ylabel("X")
            ax.set_title(f"{scope}: P(X > Y), * = differs from 0.5 (Holm-adjusted p < 0.05)", fontsize=10)
    fig.suptitle(_title("Probability of improvement", view))
    return fig


def plot_profiles(prof: pd.DataFrame, view: str, colours) -> plt.Figure:
    scopes = list(dict.fromkeys(prof["scope"]))
    fig, axes = plt.subplots(
        1, len(scopes), figsize=(6.2 * len(scopes), 3.8), squeeze=False, layout="constrained"
    )
    for ax, scope in zip(axes[0], scopes, strict=True):
        d = prof[prof["scope"] == scope]
        for v in sorted(d["variant"].unique()):
            c = d[d["variant"] == v]
            ax.plot(c["tau"], c["point"], color=colours[v], lw=2, label=v)
            ax.fill_between(
                c["tau"],
                c["low"],
                c["high"],
                color=colours[v],
                alpha=_band_alpha(d["variant"].nunique()),
                lw=0,
            )
        ax.set_xlabel(r"normalised score $\tau$")
        ax.set_ylabel(r"fraction of runs with score $> \tau$")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(scope)
        _outside_legend(ax)
    fig.suptitle(_title("Performance profiles, 95% bootstrap band", view))
    return fig


def plot_convergence(conv: pd.DataFrame, colours) -> plt.Figure:
    tasks = sorted(conv["task"].unique())
    variants = sorted(conv["variant"].unique())
    fig, axes = plt.subplots(
        1,
        len(tasks),
        figsize=(max(4.5, 0.7 * len(variants) + 1.5) * len(tasks), 3.8),
        squeeze=False,
        layout="constrained",
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        d = conv[conv["task"] == task].set_index("variant")
        shown = [v for v in variants if v in d.index]
        x = np.arange(len(shown))
        rate = d.loc[shown, "rate"].to_numpy(float)
        ax.bar(x, rate, color=[colours[v] for v in shown], alpha=0.8)
        ax.errorbar(
            x,
            rate,
            yerr=[rate - d.loc[shown, "low"].to_numpy(float), d.loc[shown, "high"].to_numpy(float) - rate],
            fmt="none",
            ecolor="black",
            capsize=4,
            lw=1.2,
        )
        for k, v in enumerate(shown):
            ax.text(
                k,
                0.02,
                f"{int(d.loc[v, 'converged'])}/{int(d.loc[v, 'n'])}",
                ha="center",
                va="bottom",
                fontsize=8,
                color="white" if rate[k] > 0.12 else "black",
            )
        ax.set_xticks(
            x, shown, rotation=30 if len(shown) > 4 else 0, ha="right" if len(shown) > 4 else "center"
        )
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction of seeds converged")
        thr = d["threshold"].iloc[0]
        ax.set_title(f"{task} (final return > {thr:g})")
    fig.suptitle("Convergence rate with Wilson 95% interval")
    return fig


def make_figures(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Figure]:
    """Draw every figure the tables allow into ``out_dir``; returns what was drawn, in report order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    variants = set()
    for name in ("aggregates", "profiles", "curves", "convergence"):
        if not tables[name].empty:
            variants |= set(tables[name]["variant"])
    colours = palette(variants)
    curves = tables["curves"]
    xmax = (
        {t: g["env_steps"].max() / 1000.0 * 1.01 for t, g in curves.groupby("task")}
        if not curves.empty
        else {}
    )
    made: list[Figure] = []
    for view, label in VIEWS.items():
        part = "a" if view == "all" else "b"
        c = curves[curves["view"] == view] if not curves.empty else curves
        if not c.empty:
            _save(plot_curves(c, view, colours, xmax), out_dir / f"curves_{view}.png")
            made.append(
                Figure(
                    f"curves_{view}",
                    "curves",
                    view,
                    f"Sample efficiency ({part}: {label})",
                    "Interquartile mean of the normalised evaluation return over the runs, at each "
                    "evaluation point, with a pointwise 95% stratified-bootstrap band.",
                )
            )
    for kind, title, caption in (
        (
            "aggregates",
            "Aggregate metrics",
            "Final normalised return: IQM, mean, median and optimality gap "
            "(1 - mean of scores clipped at 1; lower is better); bars are 95% stratified-bootstrap intervals "
            "(none for a variant with one run).",
        ),
        (
            "poi",
            "Probability of improvement",
            "P(X > Y): the probability that a run of X ends with a higher "
            "normalised return than a run of Y (ties count one half), with 95% bootstrap intervals.",
        ),
        (
            "profiles",
            "Performance profiles",
            "Fraction of runs whose final normalised return exceeds each "
            "threshold tau, with a 95% bootstrap band.",
        ),
    ):
        df = tables[kind]
        for view, label in VIEWS.items():
            part = "a" if view == "all" else "b"
            d = df[df["view"] == view] if not df.empty else df
            if d.empty:
                continue
            if kind == "aggregates":
                fig = plot_aggregates(d, view, colours)
            elif kind == "poi":
                fig = plot_poi(d, view)
            else:
                fig = plot_profiles(d, view, colours)
            _save(fig, out_dir / f"{kind}_{view}.png")
            made.append(Figure(f"{kind}_{view}", kind, view, f"{title} ({part}: {label})", caption))
    if not tables["convergence"].empty:
        _save(plot_convergence(tables["convergence"], colours), out_dir / "convergence.png")
        made.append(
            Figure(
                "convergence",
                "convergence",
                None,
                "Convergence rates",
                "Fraction of seeds whose final evaluation return is above the task's threshold "
                "(diverged runs count as failures), with Wilson 95% intervals; k/n on each bar.",
            )
        )
    return made
