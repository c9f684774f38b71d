"""Aggregation of a study's runs: faults are reported by path and excluded, the rest is read exactly."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from study_factory import VariantSpec, inject_fault, learning_curve, write_run, write_study

from rlmu import schema
from rlmu.cli import main
from rlmu.report.aggregate import (
    EXCLUDED,
    IN_PROGRESS,
    INCLUDED,
    aggregate_study,
    input_fingerprint,
    load_aggregation,
    write_aggregation,
)
from rlmu.report.tables import curve_arrays

EPOCHS = 20
FAULTS = {
    ("sac", 0): "truncated",
    ("sac", 1): "wrong_columns",
    ("sac", 2): "missing_column",
    ("sac", 3): "nan_rows",
    ("rlv", 0): "bad_run_json",
    ("rlv", 1): "missing_run_json",
    ("rlv", 2): "in_progress",
    ("rlmu", 0): "missing_epochs",
}


def _last_row(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1]


@pytest.fixture
def faulty_study(tmp_path):
    study = write_study(tmp_path / "faulty", seeds=4, epochs=EPOCHS)
    for (variant, seed), kind in FAULTS.items():
        inject_fault(study / "runs" / "push" / variant / f"seed_{seed}", kind)
    return study


def test_faults_reported_by_path_and_excluded(faulty_study):
    agg = aggregate_study(faulty_study)
    st = agg.status.set_index("path")
    assert len(st) == 12
    expected_reason = {
        "truncated": "half-written",
        "wrong_columns": "unexpected columns return",
        "missing_column": "missing columns updates",
        "nan_rows": "line 4: no finite value in required column eval_return_mean",
        "bad_run_json": "not valid JSON",
        "missing_run_json": "run.json is missing",
        "in_progress": "running: 20 of 30 epochs",
        "missing_epochs": "only 20 of 30 epochs",
    }
    for (variant, seed), kind in FAULTS.items():
        path = f"runs/push/{variant}/seed_{seed}"
        row = st.loc[path]
        assert expected_reason[kind] in row["reason"], (kind, row["reason"])
        assert row["category"] == (IN_PROGRESS if kind in ("in_progress", "missing_epochs") else EXCLUDED)
        if kind != "in_progress":  # a running run is expected, not a warning
            assert any(w.startswith(path) for w in agg.warnings), (kind, agg.warnings)
    assert (st["category"] == INCLUDED).sum() == 12 - len(FAULTS)


def test_included_runs_read_exactly(faulty_study):
    agg = aggregate_study(faulty_study)
    runs = agg.runs
    # Epochs of included runs plus the two readable in-progress runs; nothing from the broken ones.
    assert len(runs) == (12 - len(FAULTS) + 2) * EPOCHS
    assert runs["included"].sum() == (12 - len(FAULTS)) * EPOCHS
    assert list(runs.columns[:5]) == ["task", "variant", "seed", "status", "included"]
    assert set(schema.PROGRESS_COLUMNS) <= set(runs.columns)
    for seed in (1, 2, 3):
        expected = float(
            _last_row(faulty_study / f"runs/push/rlmu/seed_{seed}/progress.csv")["eval_return_mean"]
        )
        row = agg.status[(agg.status["variant"] == "rlmu") & (agg.status["seed"] == seed)].iloc[0]
        assert row["final_return"] == pytest.approx(expected)
        assert row["final_normalised"] == pytest.approx(expected / 100.0)  # push: returns in [0, 100]
        assert row["converged"] == (expected > 0.0)
        r = runs[(runs["variant"] == "rlmu") & (runs["seed"] == seed)]
        assert r["normalised_return"].iloc[-1] == pytest.approx(expected / 100.0)
        assert r["epoch"].tolist() == list(range(1, EPOCHS + 1))


def test_diverged_and_failed_runs(tmp_path):
    study = tmp_path / "s"
    rng = np.random.default_rng(0)
    scores = learning_curve(rng, EPOCHS, VariantSpec(), converges=True)
    write_run(study, "push", "rlv", 0, scores, rng=rng)
    d = write_run(
        study, "push", "rlv", 1, scores, status="diverged", epochs_total=40, rng=rng, error="NaN loss"
    )
    # The last two evaluations of the diverged run are NaN: they are dropped, the last finite one counts.
    lines = (d / "progress.csv").read_text().splitlines()
    col = schema.PROGRESS_COLUMNS.index("eval_return_mean")
    for i in (-1, -2):
        cells = lines[i].split(",")
        cells[col] = "nan"
        lines[i] = ",".join(cells)
    (d / "progress.csv").write_text("\n".join(lines) + "\n")
    write_run(study, "push", "rlv", 2, scores, status="failed", rng=rng, error="CUDA out of memory")
    # A run that diverged before its first evaluation: a header and no rows. Counted, not dropped.
    d3 = write_run(study, "push", "rlv", 3, scores, status="diverged", epochs_total=40, rng=rng, error="NaN")
    (d3 / "progress.csv").write_text((d3 / "progress.csv").read_text().splitlines()[0] + "\n")
    agg = aggregate_study(study)
    st = agg.status.set_index("seed")
    assert st.loc[1, "category"] == INCLUDED
    # A diverged run is a failure everywhere: not converged, and the task's minimum score in every
    # statistic, whatever its last finite return was (one rule, not two).
    assert st.loc[1, "converged"] == False  # noqa: E712
    assert st.loc[1, "final_return"] == 0.0 and st.loc[1, "final_normalised"] == 0.0
    assert st.loc[1, "last_finite_return"] == pytest.approx(100 * scores[-3])
    assert st.loc[1, "epochs_in_csv"] == EPOCHS - 2
    assert st.loc[2, "category"] == EXCLUDED and "CUDA out of memory" in st.loc[2, "reason"]
    assert st.loc[3, "category"] == INCLUDED and st.loc[3, "epochs_in_csv"] == 0
    assert st.loc[3, "final_normalised"] == 0.0 and st.loc[3, "converged"] == False  # noqa: E712
    # The diverged run's curve is its evaluations up to the divergence, then the minimum; the one that
    # diverged at once is at the minimum throughout.
    grid, y = curve_arrays(agg, "all")["push"]["rlv"]
    assert grid[-1] == EPOCHS * 1000
    assert y.shape == (3, EPOCHS)
    np.testing.assert_allclose(y[1, : EPOCHS - 2], scores[: EPOCHS - 2])
    assert y[1, -1] == 0.0 and not y[2].any()
    # the statistics count them the same way
    from rlmu.report.tables import final_scores, study_data

    np.testing.assert_allclose(final_scores(agg, "all", [])["push"]["rlv"][:, 0], [scores[-1], 0.0, 0.0])
    g = study_data(agg).get("push", "rlv")
    np.testing.assert_allclose(g.final_score, [scores[-1], 0.0, 0.0])
    assert list(g.converged) == [True, False, False]


def test_runs_of_different_length_aligned_on_env_steps(tmp_path):
    study = tmp_path / "s"
    rng = np.random.default_rng(1)
    write_run(study, "push", "sac", 0, np.linspace(0, 1, 30), rng=rng, steps_per_epoch=1000)
    write_run(study, "push", "sac", 1, np.linspace(0, 1, 15), rng=rng, steps_per_epoch=2000)
    agg = aggregate_study(study)
    assert not any("end at different env_steps" in w for w in agg.warnings)  # both end at 30000
    grid, y = curve_arrays(agg, "all")["push"]["sac"]
    assert grid[0] == 1000 and grid[-1] == 30000
    # Interpolation on env_steps: at 4000 steps run 0 is at epoch 4, run 1 at its epoch 2.
    k = int(np.flatnonzero(grid == 4000)[0])
    assert y[0, k] == pytest.approx(3 / 29)
    assert y[1, k] == pytest.approx(1 / 14)
    # A third, shorter completed run: warned about, and the grid stops at the shortest end.
    write_run(study, "push", "sac", 2, np.linspace(0, 1, 10), rng=rng, steps_per_epoch=1000)
    agg = aggregate_study(study)
    assert any(w.startswith("runs/push/sac: completed runs end at different env_steps") for w in agg.warnings)
    grid, y = curve_arrays(agg, "all")["push"]["sac"]
    assert grid[-1] == 10000 and y.shape == (3, 10)


def test_write_and_load_roundtrip(faulty_study):
    agg = aggregate_study(faulty_study)
    out = write_aggregation(faulty_study, agg)
    assert {p.name for p in out.iterdir()} >= {"runs.parquet", "runs.csv", "run_status.csv", "manifest.json"}
    back = load_aggregation(faulty_study)
    assert len(back.runs) == len(agg.runs)
    assert back.warnings == agg.warnings
    assert (back.status["category"] == agg.status["category"]).all()
    assert json.loads((out / "manifest.json").read_text())["thresholds"] == {"push": 0.0}


def test_cli_aggregate_prints_paths_not_traceback(faulty_study, capsys):
    assert main(["aggregate", str(faulty_study)]) == 0
    out, err = capsys.readouterr()
    assert "12 runs (4 included, 2 in progress, 6 excluded)" in out
    assert "runs/push/sac/seed_0/progress.csv" in err and "Traceback" not in err
    status = (faulty_study / "aggregate" / "run_status.csv").read_text()
    assert "runs/push/rlv/seed_0" in status


def test_cli_missing_study_is_a_clear_error(tmp_path, capsys):
    assert main(["aggregate", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "notastudy").mkdir()
    assert main(["aggregate", str(tmp_path / "notastudy")]) == 2
    assert "has no runs/ folder" in capsys.readouterr().err


def test_duplicate_seed_directories_are_both_rejected(tmp_path, capsys):
    # seed_1 beside seed_01: the same seed twice would be counted twice
    study = write_study(tmp_path / "dup", variants={"sac": VariantSpec()}, seeds=3, epochs=5)
    shutil.copytree(study / "runs/push/sac/seed_1", study / "runs/push/sac/seed_01")
    agg = aggregate_study(study)
    st = agg.status.set_index("path")
    for path, other in (("seed_1", "seed_01"), ("seed_01", "seed_1")):
        row = st.loc[f"runs/push/sac/{path}"]
        assert row["category"] == EXCLUDED and f"runs/push/sac/{other}" in row["reason"]
    assert (agg.status["category"] == INCLUDED).sum() == 2
    # the report is written, naming both
    assert main(["report", str(study), "--reps", "200", "--curve-reps", "50"]) == 0
    html = (study / "report.html").read_text()
    assert "runs/push/sac/seed_01" in html and "is also held by" in html


def test_files_that_are_directories_are_reasons_not_tracebacks(tmp_path, capsys):
    # a progress.csv that is a directory raised IsADirectoryError
    study = write_study(tmp_path / "dirs", variants={"sac": VariantSpec()}, seeds=4, epochs=5)
    for seed, name in ((0, "progress.csv"), (1, "run.json"), (2, "timing.csv")):
        f = study / f"runs/push/sac/seed_{seed}" / name
        f.unlink()
        f.mkdir()
    agg = aggregate_study(study)
    st = agg.status.set_index("seed")
    assert st.loc[0, "category"] == EXCLUDED and "progress.csv is a directory" in st.loc[0, "reason"]
    assert st.loc[1, "category"] == EXCLUDED and "run.json is a directory" in st.loc[1, "reason"]
    assert st.loc[2, "category"] == INCLUDED  # timing is not part of the result
    assert any("seed_2/timing.csv: not a file" in w for w in agg.warnings)
    assert main(["report", str(study), "--reps", "200", "--curve-reps", "50"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_unknown_run_record_keys_are_ignored(tmp_path):
    # a seed-pack trainer adds "pack" (the seeds trained together) to run.json
    study = write_study(tmp_path / "pack", variants={"sac": VariantSpec()}, seeds=2, epochs=5)
    for seed in (0, 1):
        path = study / f"runs/push/sac/seed_{seed}/run.json"
        record = json.loads(path.read_text())
        record["pack"] = [0, 1]
        record["something_new"] = {"nested": True}
        path.write_text(json.dumps(record))
    agg = aggregate_study(study)
    assert (agg.status["category"] == INCLUDED).all()


def test_fingerprint_covers_every_input(tmp_path):
    # a new empty or checkpoint-only run directory, or a changed timing.csv, passed as
    # "up to date"
    study = write_study(tmp_path / "fp", variants={"sac": VariantSpec()}, seeds=2, epochs=5)
    base = input_fingerprint(study)
    (study / "runs/push/sac/seed_7").mkdir()
    empty = input_fingerprint(study)
    assert empty != base
    (study / "runs/push/sac/seed_7/checkpoints").mkdir()
    (study / "runs/push/sac/seed_7/checkpoints/latest.pt").write_bytes(b"x")
    assert input_fingerprint(study) == empty  # the checkpoint is not read: no change
    timing = study / "runs/push/sac/seed_0/timing.csv"
    timing.write_text("garbage\n")
    assert input_fingerprint(study) != empty
