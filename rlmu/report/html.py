"""The study report: one self-contained ``report.html`` (figures as base64 data URIs, inline CSS, a
Content-Security-Policy that forbids every external request) and ``report.md`` with the same tables.

The page carries a small inline script that, once the page has loaded, records in a hidden
``<div id="render-check">`` how many images it has, how many decoded (``naturalWidth > 0``), and any
script or resource errors. Headless browsers (the project's browser test) read it from the DOM; a reader
never sees it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import importlib.metadata
import subprocess
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from rlmu.report.aggregate import EXCLUDED, IN_PROGRESS, INCLUDED, Aggregation
from rlmu.report.figures import Figure
from rlmu.report.tables import ALL_TASKS, VIEWS, to_markdown
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

OUTCOME_RULES = [
    "<b>completed</b> runs with every epoch recorded are included.",
    "<b>diverged</b> runs are included: divergence is an outcome of the method. Their final return is the last "
    "finite evaluation return, they count as <b>not converged</b> whatever that return is, and their learning "
    "curve is carried forward at that return to the end of the variant's step range.",
    "<b>running</b> / <b>preempted</b> runs, and completed runs with epochs missing, are in progress: excluded "
    "from every statistic and figure (their partial curves would bias the late part of the IQM curves towards "
    "the fastest seeds); their epochs remain in <code>aggregate/runs.csv</code>.",
    "<b>failed</b> runs (the trainer crashed) are excluded, with their error message.",
    "Runs whose files cannot be read (missing or invalid <code>run.json</code>, truncated or malformed "
    "<code>progress.csv</code>, wrong columns, missing values) are excluded and listed below by path.",
    "Runs of one task and variant that end at different environment steps are compared at their own last "
    "evaluation; learning curves are aligned on environment steps by linear interpolation.",
]

_VERDICT_CLASS = {"supported": "ok", "contradicted": "bad", "inconclusive": "warn", "not measured": "na"}

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<script>
(function () {
  var errors = [];
  var origError = console.error;
  console.error = function () { errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); origError.apply(console, arguments); };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t.tagName) { errors.push("failed to load " + t.tagName.toLowerCase() + " " + (t.alt || t.src || "").slice(0, 80)); }
    else { errors.push("script error: " + e.message); }
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) { errors.push("blocked request: " + e.blockedURI); });
  window.addEventListener("load", function () {
    var imgs = document.images, loaded = 0;
    for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { loaded++; } }
    var d = document.createElement("div");
    d.id = "render-check"; d.hidden = true;
    d.setAttribute("data-images", String(imgs.length));
    d.setAttribute("data-loaded", String(loaded));
    d.setAttribute("data-errors", JSON.stringify(errors));
    document.body.appendChild(d);
  });
})();
</script>
<style>
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: #1d1d1f; margin: 0; background: #fafafa; line-height: 1.45; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 1.8em; margin: 0.2em 0 0.1em; }
h2 { border-bottom: 2px solid #e3e3e3; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-top: 1.4em; }
.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #d6d6d6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f1f3f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.ok td.verdict { background: #d3f2d7; color: #0b5d1e; font-weight: 600; }
tr.bad td.verdict { background: #fbd5d5; color: #8a1010; font-weight: 600; }
tr.warn td.verdict { background: #fff0c2; color: #7a5300; font-weight: 600; }
tr.na td { color: #777; }
.box { border-left: 4px solid #999; background: #f6f6f6; padding: 8px 14px; margin: 1em 0; }
.box.warn { border-color: #e0a800; background: #fff8e1; }
.box.note { border-color: #3a7bd5; background: #eef4fc; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px; align-items: start; }
figure { margin: 0.4em 0 1.2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.88em; color: #444; margin-top: 4px; }
pre { background: #f4f4f4; padding: 10px 14px; overflow-x: auto; font-size: 0.85em; }
details summary { cursor: pointer; font-weight: 600; margin: 0.5em 0; }
.muted { color: #666; }
nav a { margin-right: 14px; }
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p class="subtitle">{{ subtitle }}</p>
<nav>{% for id, label in sections %}<a href="#{{ id }}">{{ label }}</a>{% endfor %}</nav>

<h2 id="summary">Summary</h2>
<ul>{% for line in summary %}<li>{{ line | safe }}</li>{% endfor %}</ul>
{% if warnings %}<div class="box warn"><b>{{ warnings | length }} warning(s)</b> (details under <a href="#runs">Runs</a>):
<ul>{% for w in warnings[:12] %}<li><code>{{ w }}</code></li>{% endfor %}{% if warnings | length > 12 %}<li>... and {{ warnings | length - 12 }} more</li>{% endif %}</ul></div>{% endif %}
{% for n in notes %}<div class="box note">{{ n }}</div>{% endfor %}

<h2 id="claims">Claims</h2>
{% if claims_html %}{{ claims_html | safe }}{% else %}<p class="muted">No claim could be evaluated: {{ claims_reason }}</p>{% endif %}

<h2 id="figures">Figures</h2>
{% if figure_groups %}{% for group in figure_groups %}
<h3>{{ group.title }}</h3>
<div class="pair">{% for f in group.figures %}
<figure><img src="data:image/png;base64,{{ f.data }}" alt="{{ f.title }}" width="{{ f.width }}"><figcaption><b>{{ f.title }}.</b> {{ f.caption }}</figcaption></figure>{% endfor %}
</div>{% endfor %}{% else %}<p class="muted">No figures: no run is included in the statistics.</p>{% endif %}

<h2 id="tables">Tables</h2>
{% for t in tables %}<h3>{{ t.title }}</h3>{% if t.note %}<p class="muted">{{ t.note }}</p>{% endif %}{{ t.html | safe }}
{% endfor %}

<h2 id="runs">Runs</h2>
<p>Rules for run outcomes:</p>
<ul>{% for r in rules %}<li>{{ r | safe }}</li>{% endfor %}</ul>
{{ run_counts_html | safe }}
{% if excluded_html %}<h3>Excluded and in-progress runs</h3>{{ excluded_html | safe }}{% else %}<p>Every run found is included.</p>{% endif %}
{% if diverged_html %}<h3>Diverged runs (included, counted as not converged)</h3>{{ diverged_html | safe }}{% endif %}
{% if warnings %}<h3>All warnings</h3><ul>{% for w in warnings %}<li><code>{{ w }}</code></li>{% endfor %}</ul>{% endif %}

<h2 id="config">Study configuration</h2>
{% if config_text %}<p class="muted">{{ config_path }}</p><pre>{{ config_text }}</pre>{% else %}<p class="muted">No study configuration file was given or found.</p>{% endif %}

<h2 id="provenance">Provenance</h2>
{{ provenance_html | safe }}
</main>
</body>
</html>
"""


def _num(v, digits=3) -> str:
    if v is None or (isinstance(v, float | np.floating) and np.isnan(v)):
        return ""
    if isinstance(v, float | np.floating):
        return f"{v:.{digits}f}"
    return str(v)


def table_html(df: pd.DataFrame, digits: int = 3, row_class=None, cell_class=None) -> str:
    """An HTML table, HTML-escaped; numbers right-aligned and rounded."""
    if df.empty:
        return '<p class="muted">(no rows)</p>'
    head = "".join(f"<th>{_html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for i, row in enumerate(df.itertuples(index=False)):
        cls = row_class(df.iloc[i]) if row_class else ""
        cells = []
        for c, v in zip(df.columns, row, strict=True):
            classes = []
            if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
                classes.append("num")
            if cell_class:
                classes.extend(cell_class(c))
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{_html.escape(_num(v, digits))}</td>")
        body.append(
            f'<tr class="{cls}">' + "".join(cells) + "</tr>" if cls else "<tr>" + "".join(cells) + "</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _interval(r) -> str:
    return f"{r['point']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


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
    d = poi[poi["view"] == view]
    if d.empty:
        return pd.DataFrame()
    # Each unordered pair once (P(Y > X) = 1 - P(X > Y)).
    d = d[d["x"] < d["y"]]
    return pd.DataFrame(
        {
            "scope": d["scope"],
            "pair": "P(" + d["x"] + " > " + d["y"] + ")",
            "P(X > Y) [95% CI]": d.apply(_interval, axis=1),
            "interval excludes 0.5": np.where((d["low"] > 0.5) | (d["high"] < 0.5), "yes", "no"),
        }
    )


def claims_table(claims: pd.DataFrame) -> pd.DataFrame:
    if claims.empty:
        return claims
    out = pd.DataFrame(
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
            "seeds needed": [
                "" if (verdict != "inconclusive" or pd.isna(n)) else str(int(n))
                for verdict, n in zip(claims["verdict"], claims["seeds_needed"], strict=True)
            ],
            "detail": claims["detail"].fillna(""),
        }
    )
    return out


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
    return ", ".join(_html.escape(str(v)) for v in names)


def _best_line(scope: str, g: pd.DataFrame) -> str:
    """Which variant has the highest IQM in one scope; ties (equal at the 3 decimals shown) are named
    as ties instead of crowning the first in sort order, and overlapping intervals are said."""
    where = f"IQM of the final normalised return ({_html.escape(scope)}, all seeds)"
    g = g.sort_values(["point", "variant"], ascending=[False, True])
    best = g.iloc[0]
    tied = g[(best["point"] - g["point"]).abs() < 5e-4]
    if len(g) == 1:
        return f"{where}: only <b>{_html.escape(best['variant'])}</b>, {_interval(best)}."
    if len(tied) == len(g):
        return f"{where}: all {len(g)} variants tie at {best['point']:.3f}; none is best."
    if len(tied) > 1:
        return (
            f"{where}: highest, tied at {best['point']:.3f}: <b>{_names(tied['variant'])}</b> "
            f"({len(tied)} of {len(g)} variants)."
        )
    overlap = g.iloc[1:][g.iloc[1:]["high"] >= best["low"]]
    tail = ""
    if len(overlap):
        shown = list(overlap["variant"][:4]) + (["..."] if len(overlap) > 4 else [])
        tail = (
            f"; its 95% interval overlaps those of {_plural(len(overlap), 'other variant')} ({_names(shown)})"
        )
    return f"{where}: highest is <b>{_html.escape(best['variant'])}</b> {_interval(best)}{tail}."


def _summary_lines(agg: Aggregation, tables: dict[str, pd.DataFrame]) -> list[str]:
    st = agg.status
    n_inc = int((st["category"] == INCLUDED).sum())
    n_prog = int((st["category"] == IN_PROGRESS).sum())
    n_exc = int((st["category"] == EXCLUDED).sum())
    lines = [
        f"{len(st)} run directories: <b>{n_inc} included</b>, {n_prog} in progress, {n_exc} excluded "
        f"({int((st['status'] == 'diverged').sum())} diverged runs are among the included)."
    ]
    inc = st[st["category"] == INCLUDED]
    for task, g in inc.groupby("task"):
        per = g.groupby("variant").size()
        thr = agg.thresholds.get(task)
        if per.nunique() == 1 and len(per) > 1:
            counts = f"{_plural(int(per.iloc[0]), 'seed')} each: {_names(per.index)}"
        else:
            counts = ", ".join(f"{_html.escape(v)}: {_plural(int(n), 'seed')}" for v, n in per.items())
        lines.append(
            f"Task <b>{_html.escape(task)}</b>: {_plural(len(per), 'variant')} ({counts}); a run converges "
            f"when its final evaluation return is above {thr:g}."
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
                text = ", ".join(
                    f"{_html.escape(r.variant)} {int(r.converged)}/{int(r.n)}" for r in g.itertuples()
                )
            lines.append(f"Convergence on {_html.escape(task)}: {text}.")
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
                    "html": table_html(summary) if not summary.empty else "",
                }
            )
    conv = tables["convergence"]
    if not conv.empty:
        out.append(
            {"title": "Convergence rates (Wilson 95% intervals)", "note": "", "html": table_html(conv)}
        )
    pairs = tables["convergence_pairs"]
    if not pairs.empty:
        out.append(
            {
                "title": "Differences of convergence rates",
                "note": "diff = rate_a - rate_b with Newcombe's 95% interval; p_value: Fisher's exact test, two-sided.",
                "html": table_html(pairs),
            }
        )
    for view, label in VIEWS.items():
        if not tables["poi"].empty:
            out.append(
                {
                    "title": f"Probability of improvement: {label}",
                    "note": "",
                    "html": table_html(poi_summary(tables["poi"], view)),
                }
            )
    return out


def render_markdown(study: str, agg: Aggregation, tables: dict[str, pd.DataFrame], notes: list[str]) -> str:
    parts = [f"# rlmu report: {study}\n\n## Summary\n\n"]
    parts += [f"- {_strip_tags(line)}\n" for line in _summary_lines(agg, tables)]
    parts += [f"- note: {n}\n" for n in notes]
    parts.append("\n## Claims\n\n" + to_markdown(claims_table(tables["claims"])))
    for view, label in VIEWS.items():
        parts.append(
            f"\n## Aggregate metrics: {label}\n\n"
            + to_markdown(aggregate_summary(tables["aggregates"], view))
        )
    parts.append("\n## Convergence rates\n\n" + to_markdown(tables["convergence"]))
    parts.append(
        "\n## Differences of convergence rates (Fisher's exact test)\n\n"
        + to_markdown(tables["convergence_pairs"])
    )
    for view, label in VIEWS.items():
        parts.append(
            f"\n## Probability of improvement: {label}\n\n" + to_markdown(poi_summary(tables["poi"], view))
        )
    parts.append("\n## Excluded and in-progress runs\n\n" + to_markdown(_excluded(agg)))
    if agg.warnings:
        parts.append("\n## Warnings\n\n" + "".join(f"- `{w}`\n" for w in agg.warnings))
    return "".join(parts)


def _strip_tags(s: str) -> str:
    import re

    return _html.unescape(re.sub(r"<[^>]+>", "", s))


def _excluded(agg: Aggregation) -> pd.DataFrame:
    st = agg.status[agg.status["category"] != INCLUDED]
    return st[["path", "status", "category", "epochs_in_csv", "epochs_total", "reason"]].rename(
        columns={"epochs_in_csv": "epochs recorded", "epochs_total": "epochs planned"}
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
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into the study folder; returns both paths."""
    study_dir = Path(study_dir)
    study = study_dir.resolve().name
    notes = list(notes or [])
    config_text = ""
    if config_path is not None:
        try:
            config_text = Path(config_path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            notes.append(f"study configuration {config_path} could not be read: {exc}")
    claims = tables["claims"]
    excluded = _excluded(agg)
    diverged = agg.status[(agg.status["category"] == INCLUDED) & (agg.status["status"] == "diverged")]
    counts = None
    if len(agg.status):
        counts = agg.status.groupby(["task", "variant", "category"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=[INCLUDED, IN_PROGRESS, EXCLUDED], fill_value=0)
        counts.columns.name = None
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html_text = env.from_string(TEMPLATE).render(
        title=f"rlmu report: {study}",
        subtitle=f"{len(agg.status)} runs in {study_dir}; reinforcement learning from observation videos",
        sections=[
            ("summary", "Summary"),
            ("claims", "Claims"),
            ("figures", "Figures"),
            ("tables", "Tables"),
            ("runs", "Runs"),
            ("config", "Configuration"),
            ("provenance", "Provenance"),
        ],
        summary=_summary_lines(agg, tables),
        warnings=agg.warnings,
        notes=notes,
        claims_html=table_html(
            claims_table(claims),
            row_class=lambda r: _VERDICT_CLASS.get(str(r["verdict"]), ""),
            cell_class=lambda c: ["verdict"] if c == "verdict" else [],
        )
        if not claims.empty
        else "",
        claims_reason="no run is included in the statistics"
        if (agg.status["category"] == INCLUDED).sum() == 0
        else "see the notes above",
        figure_groups=_figure_groups(study_dir / "figures", figures),
        tables=_tables(tables),
        rules=OUTCOME_RULES,
        run_counts_html=table_html(counts.reset_index()) if counts is not None else "",
        excluded_html=table_html(excluded) if not excluded.empty else "",
        diverged_html=table_html(
            diverged[["path", "epochs_in_csv", "epochs_total", "final_return", "reason"]]
        )
        if not diverged.empty
        else "",
        config_text=config_text,
        config_path=str(config_path) if config_path else "",
        provenance_html=table_html(pd.DataFrame(provenance(agg, params), columns=["item", "value"])),
    )
    html_path, md_path = study_dir / "report.html", study_dir / "report.md"
    atomic_write_text(html_path, html_text)
    atomic_write_text(md_path, render_markdown(study, agg, tables, notes))
    return html_path, md_path


__all__ = ["ALL_TASKS", "render_report", "table_html"]
