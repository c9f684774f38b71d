"""``rlmu stats`` / ``rlmu report`` on small synthetic studies (few bootstrap repetitions: fast)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from study_factory import VariantSpec, inject_fault, write_study

from rlmu.cli import main
from rlmu.report.tables import TABLES

FAST = ["--reps", "300", "--curve-reps", "50"]
VARIANTS = {"sac": VariantSpec(p_converge=0.75), "rlv": VariantSpec(p_converge=0.5, speed=2.0)}


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    study = write_study(tmp_path_factory.mktemp("r") / "small", variants=VARIANTS, seeds=4, epochs=15)
    inject_fault(study / "runs/push/sac/seed_3", "truncated")
    assert main(["report", str(study), *FAST]) == 0
    return study


def test_report_html_is_self_contained(reported):
    html = (reported / "report.html").read_text()
    assert "<title>rlmu report: small</title>" in html
    figures = sorted(p.stem for p in (reported / "figures").glob("*.png"))
    assert len(figures) == 9  # 4 kinds x (a, b) + convergence
    assert html.count('src="data:image/png;base64,') == len(figures)
    # No external request of any kind: every src/href is a data URI or an in-page anchor.
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr
    assert "default-src 'none'" in html
    assert "docs/fidelity.md" in html  # provenance names the table of every choice
    for section in ('id="claims"', 'id="figures"', 'id="runs"', 'id="config"', 'id="provenance"'):
        assert section in html
    # The broken run is named, with its reason; the study config is embedded.
    assert "runs/push/sac/seed_3" in html and "half-written" in html
    assert "seeds: 4" in html


def test_report_claims_table(reported):
    html = (reported / "report.html").read_text()
    claims = (reported / "stats" / "claims.csv").read_text()
    assert len(claims.strip().splitlines()) == 1 + 8  # header + C1..C8
    assert '<td class="verdict">' in html
    for verdict in re.findall(r'<td class="verdict">([^<]*)</td>', html):
        assert verdict in ("supported", "contradicted", "inconclusive", "not measured")
    # The study has sac and rlv on push: the convergence-rate claims C2 (rlv) and C3 (sac) are measured.
    for cid in ("C2", "C3"):
        row = re.search(rf"<tr class=\"(ok|bad|warn)\"><td>{cid}</td>", html)
        assert row, cid


def test_report_markdown_and_stats_files(reported):
    md = (reported / "report.md").read_text()
    assert md.startswith("# rlmu report: small")
    assert "## Claims" in md and "## Aggregate metrics: all seeds" in md and "## Convergence rates" in md
    assert "runs/push/sac/seed_3" in md
    for name in TABLES:
        assert (reported / "stats" / f"{name}.csv").is_file()
        assert (reported / "stats" / f"{name}.md").is_file()
    agg = (reported / "stats" / "aggregates.csv").read_text()
    assert agg.startswith("view,scope,variant,metric,point,low,high,n_runs,n_tasks\n")
    # sac has 3 included runs (seed_3 is broken), rlv 4.
    assert ",push,sac,IQM," in agg and re.search(r"^all,push,sac,IQM,[^\n]*,3,1$", agg, re.M)
    assert re.search(r"^all,push,rlv,IQM,[^\n]*,4,1$", agg, re.M)


def test_report_rerun_skips_up_to_date_steps(reported, capsys):
    assert main(["report", str(reported), *FAST]) == 0
    out = capsys.readouterr().out
    assert "aggregate: up to date" in out and "stats: up to date" in out and "figures: up to date" in out
    # Changing the statistics parameters recomputes the statistics, not the aggregate.
    assert main(["report", str(reported), "--reps", "301", "--curve-reps", "50"]) == 0
    out = capsys.readouterr().out
    assert "aggregate: up to date" in out and "stats: up to date" not in out


def test_stats_are_deterministic(tmp_path):
    a = write_study(tmp_path / "a", variants=VARIANTS, seeds=3, epochs=10, rng_seed=3)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert main(["stats", str(a), *FAST, "--seed", "7"]) == 0
    assert main(["stats", str(b), *FAST, "--seed", "7"]) == 0
    for name in TABLES:
        assert (a / "stats" / f"{name}.csv").read_bytes() == (b / "stats" / f"{name}.csv").read_bytes(), name
    assert main(["stats", str(b), *FAST, "--seed", "8"]) == 0
    assert (a / "stats" / "aggregates.csv").read_bytes() != (b / "stats" / "aggregates.csv").read_bytes()


def test_empty_study_gives_a_report_saying_no_runs(tmp_path, capsys):
    study = tmp_path / "empty"
    (study / "runs").mkdir(parents=True)
    assert main(["report", str(study), *FAST]) == 0
    html = (study / "report.html").read_text()
    assert "0 run directories" in html and "No figures" in html
    assert "no run directories found" in capsys.readouterr().err


def test_not_a_study_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "no runs/ folder" in err and "Traceback" not in err


def test_all_runs_broken_still_gives_a_report(tmp_path):
    study = write_study(tmp_path / "broken", variants={"sac": VariantSpec()}, seeds=2, epochs=5)
    inject_fault(study / "runs/push/sac/seed_0", "wrong_columns")
    inject_fault(study / "runs/push/sac/seed_1", "nan_rows")
    assert main(["report", str(study), *FAST]) == 0
    html = (study / "report.html").read_text()
    assert "runs/push/sac/seed_0" in html and "runs/push/sac/seed_1" in html
    assert "No figures" in html


def test_bad_parameters_are_user_errors(tmp_path, capsys):
    study = write_study(tmp_path / "p", variants={"sac": VariantSpec()}, seeds=2, epochs=5)
    assert main(["stats", str(study), "--reps", "0"]) == 2
    assert "reps must be a positive integer" in capsys.readouterr().err
    (study / "bad.yaml").write_text("converge_thresholds: {push: high}\n")
    assert main(["stats", str(study), "--config", str(study / "bad.yaml")]) == 2
    assert "converge_thresholds.push must be a number" in capsys.readouterr().err


def test_uneven_study_reads_cleanly(tmp_path):
    """Variants on one task only, 1-2 seeds, every run at the floor (a smoke-test study): one note for
    the whole 'all tasks' scope, ties named as ties, singular counts, per-task figure rows, and claims
    that are inconclusive for lack of seeds."""
    import pandas as pd

    from rlmu.report.figures import palette, plot_aggregates

    floor = VariantSpec(p_converge=0.0)
    study = tmp_path / "uneven"
    write_study(
        study,
        tasks=("acrobot",),
        variants={v: floor for v in ("sac", "rlv_nopair", "rlv_reverse")},
        seeds=2,
        epochs=4,
    )
    write_study(
        study, tasks=("push",), variants={v: floor for v in ("sac", "rlv", "rlmu")}, seeds=1, epochs=4
    )
    assert main(["report", str(study), *FAST]) == 0
    html = (study / "report.html").read_text()
    notes = re.findall(r'<div class="box note">(.*?)</div>', html, re.S)
    scope_notes = [n for n in notes if "all tasks" in n]
    assert len(scope_notes) == 1, notes
    for v in ("rlmu", "rlv", "rlv_nopair", "rlv_reverse", "sac"):
        assert v in scope_notes[0]
    assert "1 seeds" not in html and "1 seed each" in html and "2 seeds each" in html
    assert "Highest IQM" not in html
    assert html.count("variants tie at 0.000; none is best") == 2
    # C2 (rlv converges on ~half the seeds) has one seed: inconclusive for that reason, whatever it shows.
    c2 = re.search(r"<td>C2</td>(.*?)</tr>", html, re.S).group(1)
    assert '<td class="verdict">inconclusive</td>' in c2
    assert "too few seeds: rlv has 1 seed, fewer than the 10 a verdict needs" in c2
    meta = (study / "stats" / "meta.json").read_text()
    assert '"min_seeds": 10' in meta
    # a variant with one run has no interval, and the tables say so instead of a zero-width "95% CI"
    aggs = pd.read_csv(study / "stats" / "aggregates.csv")
    one = aggs[(aggs["scope"] == "push") & (aggs["view"] == "all")]
    assert one["low"].isna().all() and one["high"].isna().all() and (one["n_runs"] == 1).all()
    assert "(no interval: one run)" in html
    # Each task's panel of the aggregate figure lists that task's variants only.
    agg = pd.read_csv(study / "stats" / "aggregates.csv")
    agg = agg[agg["view"] == "all"]
    fig = plot_aggregates(agg, "all", palette(agg["variant"]))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        scope = ax.get_title().split("(")[-1].rstrip(")")
        labels = {t.get_text().split(" (")[0] for t in ax.get_yticklabels()}
        assert labels == set(agg.loc[agg["scope"] == scope, "variant"]), (scope, labels)


def test_min_seeds_from_flag_and_config(tmp_path, capsys):
    study = write_study(tmp_path / "m", variants={"rlv": VariantSpec(p_converge=0.0)}, seeds=2, epochs=4)
    assert main(["stats", str(study), *FAST, "--min-seeds", "1"]) == 0
    assert '"min_seeds": 1' in (study / "stats" / "meta.json").read_text()
    # rlv never converges on 2 seeds: exact [0, 0.84] straddles C2's [0.3, 0.7] whatever the floor
    claims = (study / "stats" / "claims.csv").read_text()
    assert "too few seeds" not in claims
    with open(study / "config.yaml", "a") as f:
        f.write("min_seeds: 3\n")
    assert main(["stats", str(study), *FAST]) == 0
    assert '"min_seeds": 3' in (study / "stats" / "meta.json").read_text()
    assert "fewer than the 3 a verdict needs" in (study / "stats" / "claims.csv").read_text()
    assert main(["stats", str(study), *FAST, "--min-seeds", "0"]) == 2
    assert "min_seeds must be a positive integer" in capsys.readouterr().err
    (study / "config.yaml").write_text("min_seeds: many\n")
    assert main(["stats", str(study), *FAST]) == 2
    assert "min_seeds must be a positive integer" in capsys.readouterr().err


def test_claims_table_has_raw_and_adjusted_p_and_reasons(reported):
    claims = pd.read_csv(reported / "stats" / "claims.csv")
    assert list(claims.columns[-3:]) == ["p_value", "p_holm", "seeds_needed_reason"]
    tested = claims[claims["p_value"].notna()]
    assert (tested["p_holm"] >= tested["p_value"] - 1e-12).all()
    poi = pd.read_csv(reported / "stats" / "poi.csv")
    assert {"p_value", "p_holm"} <= set(poi.columns)
    html = (reported / "report.html").read_text()
    assert "<th>p (Holm)</th>" in html and "differs from 0.5 (Holm)" in html


def test_template_is_package_data():
    from importlib.resources import files

    import rlmu.report.html as html_module

    templates = files("rlmu.report") / "templates"
    for name in (
        "report.html.j2",
        "report.md.j2",
        "macros.html.j2",
        "macros.md.j2",
        "report.css",
        "render_check.js",
    ):
        assert (templates / name).is_file(), name
    source = Path(html_module.__file__).read_text()
    # no markup built in Python: no table tags, no <style> or <script>, no | safe
    for marker in ("<table", "<td", "<style", "<script", "| safe"):
        assert marker not in source, marker
    import rlmu.report.tables as tables_module
    import rlmu.stats.claims as claims_module

    # one name per thing: the display frame and the result frame have different names
    assert not hasattr(claims_module, "claims_table") and not hasattr(html_module, "claims_table")
    assert hasattr(tables_module, "claims_frame") and hasattr(html_module, "claims_summary")


@pytest.mark.parametrize("change", ["empty_run_dir", "checkpoint_only_dir", "timing", "stats_code"])
def test_report_notices_every_input(tmp_path, capsys, change):
    """What `rlmu report` reads decides whether its steps are up to date."""
    study = write_study(tmp_path / "s", variants=VARIANTS, seeds=3, epochs=5)
    assert main(["report", str(study), *FAST]) == 0
    capsys.readouterr()
    if change == "empty_run_dir":
        (study / "runs/push/sac/seed_9").mkdir()
    elif change == "checkpoint_only_dir":
        (study / "runs/push/rlv/seed_9/checkpoints").mkdir(parents=True)
        (study / "runs/push/rlv/seed_9/checkpoints/latest.pt").write_bytes(b"0")
    elif change == "timing":
        (study / "runs/push/sac/seed_0/timing.csv").write_text("not,a,timing\n")
    else:  # the statistics code changed: its hash is recorded
        meta = study / "stats" / "meta.json"
        meta.write_text(meta.read_text().replace('"code": "', '"code": "old'))
    assert main(["report", str(study), *FAST]) == 0
    out = capsys.readouterr().out
    if change == "stats_code":
        assert "aggregate: up to date" in out and "stats: up to date" not in out
    else:
        assert "aggregate: up to date" not in out and "stats: up to date" not in out
    if change == "timing":
        assert "timing.csv" in (study / "aggregate" / "manifest.json").read_text()
