"""``rlmu report STUDY --reference REF``: a faithful reproduction agrees with its reference, a broken
variant is flagged as disagreeing, and the reference folder is left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from study_factory import VariantSpec, write_study

from rlmu.cli import main

FAST = ["--reps", "300", "--curve-reps", "50"]
TRUE = {"sac": VariantSpec(p_converge=0.7), "rlv": VariantSpec(p_converge=0.8, speed=2.0)}
# RLV whose inverse-model labels are random actions: its observation data teach nothing, and it learns
# no better than the floor on most seeds
BROKEN = {**TRUE, "rlv": VariantSpec(p_converge=0.1, speed=0.5)}


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return write_study(
        tmp_path_factory.mktemp("ref") / "acrobot_ref", variants=TRUE, seeds=10, epochs=12, rng_seed=1
    )


def _check(study: Path, reference: Path) -> pd.DataFrame:
    assert main(["report", str(study), *FAST, "--reference", str(reference)]) == 0
    html = (study / "report.html").read_text()
    assert 'id="reference"' in html and "Reproduction check" in html
    assert (study / "reference" / "reference_curves.png").is_file()
    assert "Reproduction check" in (study / "report.md").read_text()
    return pd.read_csv(study / "reference" / "comparison.csv")


def test_a_faithful_reproduction_agrees(tmp_path, reference):
    before = _tree_hash(reference)
    study = write_study(tmp_path / "mine", variants=TRUE, seeds=10, epochs=12, rng_seed=7)
    table = _check(study, reference)
    assert len(table) == 2 * 3  # two variants x (IQM, mean, convergence rate)
    assert set(table["verdict"]) == {"agree"}, table[["variant", "metric", "p_holm"]]
    assert _tree_hash(reference) == before  # nothing written into the reference


def test_a_broken_variant_disagrees(tmp_path, reference, capsys):
    study = write_study(tmp_path / "broken", variants=BROKEN, seeds=10, epochs=12, rng_seed=7)
    table = _check(study, reference)
    verdicts = {(r.variant, r.metric): r.verdict for r in table.itertuples()}
    assert verdicts[("rlv", "IQM")] == "disagree" and verdicts[("rlv", "convergence rate")] == "disagree"
    assert {verdicts[("sac", m)] for m in ("IQM", "mean", "convergence rate")} == {"agree"}
    assert "disagrees: push/rlv IQM" in capsys.readouterr().out


def test_different_budgets_are_not_compared(tmp_path, reference):
    study = write_study(tmp_path / "short", variants=TRUE, seeds=10, epochs=6, rng_seed=7)
    table = _check(study, reference)
    assert set(table["verdict"]) == {"not compared"}
    assert table["reason"].str.contains("different budgets").all()


def test_the_reference_must_be_a_study_folder(tmp_path, reference, capsys):
    study = write_study(tmp_path / "mine", variants=TRUE, seeds=3, epochs=4)
    assert main(["report", str(study), *FAST, "--reference", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["report", str(study), *FAST, "--reference", str(study)]) == 2
