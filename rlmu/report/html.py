"""The study report: one self-contained ``report.html`` (figures as base64 data URIs, inline CSS, a
Content-Security-Policy that forbids every external request) and ``report.md`` with the same tables.

The page and its parts live in ``rlmu/report/templates/`` (``report.html.j2``, ``report.md.j2``, the macros,
the style sheet and the render-check script); this module only prepares plain data for them: display
frames of the statistics tables (``aggregate_summary``, ``poi_summary``, ``claims_summary``), summary
lines as text segments, and figures as data URIs.

The page's inline script, once the page has loaded, records in a hidden ``<div id="render-check">`` how
many images it has, how many decoded (``naturalWidth > 0``), and any script or resource errors. Headless
browsers (the project's browser test) read it from the DOM; a reader never sees it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import importlib.metadata
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from rlmu.report.aggregate import EXCLUDED, IN_PROGRESS, INCLUDED, Aggregation
from rlmu.report.figures import Figure
from rlmu.report.reference import REFERENCE_DIR, ReferenceCheck
from rlmu.report.render import bold, environment, plain, table_data
from rlmu.report.tables import ALL_TASKS, VIEWS
from rlmu.utils.io import atomic_write_text

PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "seaborn",
    "jinja2",
    "rliable",
    "torch",
    "gymnasium",
    "mujoco",
    "metaworld",
)

_VERDICT_CLASS = {"supported": "ok", "contradicted": "bad", "inconclusive": "warn", "not measured": "na"}


def _interval(r) -> str:
    if pd.isna(r["low"]) or pd.isna(r["high"]):
        return f"{r['point']:.3f} (no interval: one run)"
    return f"{r['point']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def _p(p) -> str:
    if pd.isna(p):
        return ""
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def aggregate_summary(agg_table: pd.DataFrame, view: str) -> pd.DataFrame:
    """variant x metric table of 'point [low, high]' strings for one view (scopes stacked)."""
    d = agg_table[agg_table["view"] == view]
    if d.empty:
        return pd.DataFrame()
    d = d.assign(value=d.apply(_interval, axis=1))
    wide = d.pivot_table(
        index=["scope", "variant", "n_runs"], columns="metric", values="value", aggfunc="first", sort=False
    ).reset_index()
    wide.columns.name = None
    return wide


def poi_summary(poi: pd.DataFrame, view: str) -> pd.DataFrame:
    """Each unordered pair once (P(Y > X) = 1 - P(X > Y)), with its raw and Holm-adjusted p-values."""
    d = poi[poi["view"] == view]
    if d.empty:
        return pd.DataFrame()
    d = d[d["x"] < d["y"]]
    return pd.DataFrame(
        {
            "scope": d["scope"],
            "pair": "P(" + d["x"] + " > " + d["y"] + ")",
            "P(X > Y) [95% CI]": d.apply(_interval, axis=1),
            "p": d["p_value"].map(_p),
            "p (Holm)": d["p_holm"].map(_p),
            "differs from 0.5 (Holm)": np.where(d["p_holm"] < 0.05, "yes", "no"),
        }
    )


def _seeds_needed_text(verdict, n, reason) -> str:
    if verdict != "inconclusive":
        return ""
    if not pd.isna(n):
        return str(int(n))
    return f"no number: {reason}" if isinstance(reason, str) and reason else ""


def claims_summary(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table as the report shows it (one row per claim)."""
    if claims.empty:
        return claims
    return pd.DataFrame(
        {
            "#": claims["id"],
            "claim": claims["claim"],
            "source": claims["source"],
            "task": claims["task"],
            "statistic": claims["statistic"],
            "measured [95% CI]": [
                "" if pd.isna(v) else (f"{v:.3f}" + ("" if pd.isna(lo) else f" [{lo:.3f}, {hi:.3f}]"))
                for v, lo, hi in zip(claims["value"], claims["low"], claims["high"], strict=True)
            ],
            "seeds": claims["n_seeds"],
            "verdict": claims["verdict"],
            "p (Holm)": [
                "" if pd.isna(p) else f"{_p(p)} ({_p(h)})"
                for p, h in zip(claims["p_value"], claims["p_holm"], strict=True)
            ],
            "seeds needed": [
                _seeds_needed_text(v, n, r)
                for v, n, r in zip(
                    claims["verdict"], claims["seeds_needed"], claims["seeds_needed_reason"], strict=True
                )
            ],
            "detail": claims["detail"].fillna(""),
        }
    )


def git_revision(path: Path) -> str:
    """``git describe``-like revision of the checkout holding ``path`` (with ``-dirty``), or ''."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(agg: Aggregation, params: dict | None) -> list[tuple[str, str]]:
    from rlmu import __version__

    rows = [
        ("rlmu version", __version__),
        (
            "git revision of the report code",
            git_revision(Path(__file__).parent) or "unknown (not a git checkout)",
        ),
    ]
    revs = agg.status.loc[agg.status["category"] == INCLUDED, "git_revision"].replace("", "unknown")
    if len(revs):
        rows.append(
            (
                "git revision(s) of the included runs",
                ", ".join(f"{r} ({n} runs)" for r, n in revs.value_counts().sort_index().items()),
            )
        )
    rows.append(
        (
            "methods and choices",
            "docs/fidelity.md of the rlmu repository: every place the code decides beyond the papers or "
            "departs from the released code, with its default and the config key that switches it",
        )
    )
    rows.append(("run directories found", str(len(agg.status))))
    for cat, label in ((INCLUDED, "included"), (IN_PROGRESS, "in progress"), (EXCLUDED, "excluded")):
        rows.append((f"runs {label}", str(int((agg.status["category"] == cat).sum()))))
    if params:
        rows.append(("statistics", ", ".join(f"{k}={v}" for k, v in params.items())))
    versions = []
    for p in PACKAGES:
        try:
            versions.append(f"{p} {importlib.metadata.version(p)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    rows.append(("packages", ", ".join(versions)))
    rows.append(("generated at", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")))
    return rows


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _names(names) -> str:
    return ", ".join(str(v) for v in names)


def _best_line(scope: str, g: pd.DataFrame) -> list[dict]:
    """Which variant has the highest IQM in one scope; ties (equal at the 3 decimals shown) are named
    as ties instead of crowning the first in sort order, and overlapping intervals are said."""
    where = f"IQM of the final normalised return ({scope}, all seeds)"
    g = g.sort_values(["point", "variant"], ascending=[False, True])
    best = g.iloc[0]
    tied = g[(best["point"] - g["point"]).abs() < 5e-4]
    if len(g) == 1:
        return [plain(f"{where}: only "), bold(best["variant"]), plain(f", {_interval(best)}.")]
    if len(tied) == len(g):
        return [plain(f"{where}: all {len(g)} variants tie at {best['point']:.3f}; none is best.")]
    if len(tied) > 1:
        return [
            plain(f"{where}: highest, tied at {best['point']:.3f}: "),
            bold(_names(tied["variant"])),
            plain(f" ({len(tied)} of {len(g)} variants)."),
        ]
    # a variant without an interval (one run) overlaps nothing it can be compared with
    rest = g.iloc[1:]
    overlap = rest[rest["high"] >= best["low"]] if not pd.isna(best["low"]) else rest.iloc[:0]
    tail = ""
    if len(overlap):
        shown = list(overlap["variant"][:4]) + (["..."] if len(overlap) > 4 else [])
        tail = (
            f"; its 95% interval overlaps those of {_plural(len(overlap), 'other variant')} ({_names(shown)})"
        )
    return [plain(f"{where}: highest is "), bold(best["variant"]), plain(f" {_interval(best)}{tail}.")]


def _summary_lines(agg: Aggregation, tables: dict[str, pd.DataFrame]) -> list[list[dict]]:
    """The summary, one list of text segments per line."""
    st = agg.status
    n_inc = int((st["category"] == INCLUDED).sum())
    n_prog = int((st["category"] == IN_PROGRESS).sum())
    n_exc = int((st["category"] == EXCLUDED).sum())
    lines = [
        [
            plain(f"{len(st)} run directories: "),
            bold(f"{n_inc} included"),
            plain(
                f", {n_prog} in progress, {n_exc} excluded "
                f"({int((st['status'] == 'diverged').sum())} diverged runs are among the included)."
            ),
        ]
    ]
    inc = st[st["category"] == INCLUDED]
    for task, g in inc.groupby("task"):
        per = g.groupby("variant").size()
        thr = agg.thresholds.get(task)
        if per.nunique() == 1 and len(per) > 1:
            counts = f"{_plural(int(per.iloc[0]), 'seed')} each: {_names(per.index)}"
        else:
            counts = ", ".join(f"{v}: {_plural(int(n), 'seed')}" for v, n in per.items())
        lines.append(
            [
                plain("Task "),
                bold(task),
                plain(
                    f": {_plural(len(per), 'variant')} ({counts}); a run converges when its final "
                    f"evaluation return is above {thr:g}."
                ),
            ]
        )
    aggs = tables.get("aggregates", pd.DataFrame())
    if not aggs.empty:
        iqm = aggs[(aggs["view"] == "all") & (aggs["metric"] == "IQM")]
        for scope, g in iqm.groupby("scope", sort=False):
            lines.append(_best_line(str(scope), g))
    conv = tables.get("convergence", pd.DataFrame())
    if not conv.empty:
        for task, g in conv.groupby("task"):
            pairs = {(int(r.converged), int(r.n)) for r in g.itertuples()}
            if len(pairs) == 1 and len(g) > 1:
                k, n = pairs.pop()
                text = f"all {len(g)} variants {k} of {_plural(n, 'seed')} converged"
            else:
                text = ", ".join(f"{r.variant} {int(r.converged)}/{int(r.n)}" for r in g.itertuples())
            lines.append([plain(f"Convergence on {task}: {text}.")])
    return lines


def _embed(fig_dir: Path, f: Figure) -> dict:
    data = (fig_dir / f"{f.name}.png").read_bytes()
    # PNG header: width is bytes 16-20 (big endian). Display at most at the size it was drawn.
    width = int.from_bytes(data[16:20], "big")
    return {
        "title": f.title,
        "caption": f.caption,
        "data": base64.b64encode(data).decode("ascii"),
        "width": width,
    }


def _figure_groups(fig_dir: Path, figures: list[Figure]) -> list[dict]:
    groups: dict[str, dict] = {}
    for f in figures:
        title = f.title.split(" (")[0]
        groups.setdefault(f.kind, {"title": title, "figures": []})["figures"].append(_embed(fig_dir, f))
    return list(groups.values())


def _tables(tables: dict[str, pd.DataFrame]) -> list[dict]:
    """The "Tables" section: title, note and table data of each table shown."""
    out = []
    for view, label in VIEWS.items():
        if not tables["aggregates"].empty:
            summary = aggregate_summary(tables["aggregates"], view)
            out.append(
                {
                    "title": f"Aggregate metrics of the final normalised return: {label}",
                    "note": "point estimate [95% stratified-bootstrap interval]; optimality gap: lower is better."
                    if not summary.empty
                    else f"No run in this view ({label}): nothing to aggregate.",
                    "table": table_data(summary) if not summary.empty else None,
                }
            )
    conv = tables["convergence"]
    if not conv.empty:
        out.append(
            {"title": "Convergence rates (Wilson 95% intervals)", "note": "", "table": table_data(conv)}
        )
    pairs = tables["convergence_pairs"]
    if not pairs.empty:
        out.append(
            {
                "title": "Differences of convergence rates",
                "note": "diff = rate_a - rate_b with Newcombe's 95% interval; p_value: Fisher's exact test, "
                "two-sided; p_holm: the same after Holm's correction over the task's pairs.",
                "table": table_data(pairs),
            }
        )
    for view, label in VIEWS.items():
        if not tables["poi"].empty:
            out.append(
                {
                    "title": f"Probability of improvement: {label}",
                    "note": "p: bootstrap p-value of P(X > Y) = 0.5; p (Holm): after Holm's correction over "
                    "the pairs of the scope (every pair is tested at once).",
                    "table": table_data(poi_summary(tables["poi"], view)),
                }
            )
    return out


def _excluded(agg: Aggregation) -> pd.DataFrame:
    st = agg.status[agg.status["category"] != INCLUDED]
    return st[["path", "status", "category", "epochs_in_csv", "epochs_total", "reason"]].rename(
        columns={"epochs_in_csv": "epochs recorded", "epochs_total": "epochs planned"}
    )


def reference_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The reproduction check as the report shows it: one row per (task, variant, metric)."""

    def iv(v, lo, hi):
        return "" if pd.isna(v) else f"{v:.3f}" + ("" if pd.isna(lo) else f" [{lo:.3f}, {hi:.3f}]")

    return pd.DataFrame(
        {
            "task": table["task"],
            "variant": table["variant"],
            "metric": table["metric"],
            "this study [95% CI]": [
                iv(*r) for r in zip(table["study"], table["study_low"], table["study_high"], strict=True)
            ],
            "seeds": table["n_study"],
            "reference [95% CI]": [
                iv(*r)
                for r in zip(table["reference"], table["reference_low"], table["reference_high"], strict=True)
            ],
            "reference seeds": table["n_reference"],
            "difference [95% CI]": [
                iv(*r) for r in zip(table["diff"], table["diff_low"], table["diff_high"], strict=True)
            ],
            "p (Holm)": [
                "" if pd.isna(p) else f"{_p(p)} ({_p(h)})"
                for p, h in zip(table["p_value"], table["p_holm"], strict=True)
            ],
            "verdict": [
                v if not r else f"{v}: {r}" for v, r in zip(table["verdict"], table["reason"], strict=True)
            ],
        }
    )


def _reference_view(study_dir: Path, reference: ReferenceCheck | None) -> dict | None:
    if reference is None:
        return None
    t = reference.table
    return {
        "path": str(reference.reference),
        "counts": {v: int((t["verdict"] == v).sum()) for v in ("agree", "disagree", "not compared")},
        "table": table_data(
            reference_summary(t),
            row_class=lambda r: "bad" if str(r["verdict"]).startswith("disagree") else "",
        ),
        "notes": reference.notes,
        "figures": [_embed(study_dir / REFERENCE_DIR, f) for f in reference.figures],
    }


def render_markdown(
    study: str,
    agg: Aggregation,
    tables: dict[str, pd.DataFrame],
    notes: list[str],
    reference: ReferenceCheck | None = None,
) -> str:
    return (
        environment()
        .get_template("report.md.j2")
        .render(
            study=study,
            summary=_summary_lines(agg, tables),
            notes=notes,
            claims=table_data(claims_summary(tables["claims"])),
            aggregates=[
                (label, table_data(aggregate_summary(tables["aggregates"], v))) for v, label in VIEWS.items()
            ],
            convergence=table_data(tables["convergence"]),
            convergence_pairs=table_data(tables["convergence_pairs"]),
            poi=[(label, table_data(poi_summary(tables["poi"], v))) for v, label in VIEWS.items()],
            excluded=table_data(_excluded(agg)),
            warnings=agg.warnings,
            reference=None
            if reference is None
            else {"path": str(reference.reference), "table": table_data(reference_summary(reference.table))},
        )
    )


def render_report(
    study_dir: str | Path,
    agg: Aggregation,
    tables: dict[str, pd.DataFrame],
    figures: list[Figure],
    *,
    notes: list[str] | None = None,
    params: dict | None = None,
    config_path: Path | None = None,
    reference: ReferenceCheck | None = None,
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the study folder; returns both paths. ``reference``:
    a reproduction check (``rlmu.report.reference``), shown in a section of its own."""
    study_dir = Path(study_dir)
    study = study_dir.resolve().name
    notes = list(notes or [])
    config_text = ""
    if config_path is not None:
        try:
            config_text = Path(config_path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            notes.append(f"study configuration {config_path} could not be read: {exc}")
    diverged = agg.status[(agg.status["category"] == INCLUDED) & (agg.status["status"] == "diverged")]
    counts = None
    if len(agg.status):
        counts = agg.status.groupby(["task", "variant", "category"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=[INCLUDED, IN_PROGRESS, EXCLUDED], fill_value=0)
        counts.columns.name = None
    html_text = (
        environment()
        .get_template("report.html.j2")
        .render(
            title=f"rlmu report: {study}",
            subtitle=f"{len(agg.status)} runs in {study_dir}; reinforcement learning from observation videos",
            sections=[
                ("summary", "Summary"),
                ("claims", "Claims"),
                *([("reference", "Reproduction check")] if reference is not None else []),
                ("figures", "Figures"),
                ("tables", "Tables"),
                ("runs", "Runs"),
                ("config", "Configuration"),
                ("provenance", "Provenance"),
            ],
            summary=_summary_lines(agg, tables),
            warnings=agg.warnings,
            notes=notes,
            min_seeds=(params or {}).get("min_seeds", ""),
            claims=table_data(
                claims_summary(tables["claims"]),
                row_class=lambda r: _VERDICT_CLASS.get(str(r["verdict"]), ""),
                cell_class=lambda c: ["verdict"] if c == "verdict" else [],
            ),
            claims_reason="no run is included in the statistics"
            if (agg.status["category"] == INCLUDED).sum() == 0
            else "see the notes above",
            figure_groups=_figure_groups(study_dir / "figures", figures),
            tables=_tables(tables),
            run_counts=table_data(counts.reset_index()) if counts is not None else None,
            excluded=table_data(_excluded(agg)),
            diverged=table_data(
                diverged[["path", "epochs_in_csv", "epochs_total", "last_finite_return", "reason"]].rename(
                    columns={"last_finite_return": "last finite return"}
                )
            ),
            config_text=config_text,
            config_path=str(config_path) if config_path else "",
            provenance=table_data(pd.DataFrame(provenance(agg, params), columns=["item", "value"])),
            reference=_reference_view(study_dir, reference),
        )
    )
    html_path, md_path = study_dir / "report.html", study_dir / "report.md"
    atomic_write_text(html_path, html_text)
    atomic_write_text(md_path, render_markdown(study, agg, tables, notes, reference))
    return html_path, md_path


__all__ = ["ALL_TASKS", "claims_summary", "render_report"]
