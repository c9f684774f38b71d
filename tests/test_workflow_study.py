"""The workflow's study module (workflow/scripts/study.py): reading, validation and seed packs, in process.

The Snakemake side of the same behaviour (dry runs) is in tests/test_workflow.py.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlmu.tasks import TASKS
from rlmu.train.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rlmu_study", ROOT / "workflow/scripts/study.py")
study = importlib.util.module_from_spec(_spec)
sys.modules["rlmu_study"] = study
_spec.loader.exec_module(study)

QUICK = yaml.safe_load((ROOT / "config/quick.yaml").read_text())


def quick(**top):
    cfg = copy.deepcopy(QUICK)
    cfg.update(top)
    return cfg


# ----------------------------------------------------------------------------------------------------
# Packs


def test_seeds_are_chunked_in_list_order():
    # Chunks of the list in its order; each pack's seeds sorted, as rlmu train records them.
    assert study.form_packs([5, 3, 9, 0, 1], 2, {}) == [(3, 5), (0, 9), (1,)]
    assert study.form_packs([0, 1, 2], 10, {}) == [(0, 1, 2)]
    assert study.form_packs([0, 1, 2], 1, {}) == [(0,), (1,), (2,)]


def test_recorded_packs_are_kept_and_only_the_other_seeds_are_chunked():
    recorded = {0: (0, 1), 1: (0, 1), 2: (2,)}
    assert study.form_packs([0, 1, 2, 3, 4, 5, 6], 3, recorded) == [(0, 1), (2,), (3, 4, 5), (6,)]
    # A recorded member without a run record of its own (seed 1 here) still belongs to its pack.
    assert study.form_packs([0, 1, 2, 3], 2, {0: (0, 1)}) == [(0, 1), (2, 3)]


def _record(root: Path, task: str, variant: str, seed: int, record) -> Path:
    path = root / f"results/quick/runs/{task}/{variant}/seed_{seed}/run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record if isinstance(record, str) else json.dumps(record))
    return path


def test_packs_read_the_pack_recorded_in_run_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = study.check_study(quick(seeds=[0, 1, 2, 3, 4], pack_size=2), "quick.yaml")
    _record(tmp_path, "acrobot", "sac", 0, {"status": "completed", "pack": [2, 0, 1]})
    _record(tmp_path, "acrobot", "sac", 4, {"status": "completed"})  # an older run: a pack of one
    by_variant = {}
    for p in study.packs(cfg):
        by_variant.setdefault((p.task, p.variant), []).append(p.seeds)
    assert by_variant["acrobot", "sac"] == [(0, 1, 2), (4,), (3,)]
    assert by_variant["acrobot", "rlmu"] == [(0, 1), (2, 3), (4,)]
    pack = study.Pack("acrobot", "sac", (0, 1, 2))
    assert study.pack_outputs(cfg, pack) == [
        f"results/quick/runs/acrobot/sac/seed_{s}/run.json" for s in (0, 1, 2)
    ]
    assert study.pack_dir(cfg, pack) == "results/quick/packs/acrobot/sac/seeds_0-1-2"
    assert "'seeds=[0,1,2]'" in study.pack_args(cfg, pack)


@pytest.mark.parametrize(
    "records, expected",
    [
        ({0: "{not json"}, "seed_0/run.json: not a readable run record"),
        ({0: {"pack": [1, 2]}}, 'seed_0/run.json: "pack" must be a list of distinct seeds including 0'),
        ({0: {"pack": "0-1"}}, '"pack" must be a list'),
        ({0: {"pack": [0, 1]}, 1: {"pack": [1]}}, "seed 1 of acrobot/sac is recorded in two packs: [0, 1]"),
    ],
    ids=["corrupt", "not-a-member", "not-a-list", "conflicting"],
)
def test_unusable_run_records_are_one_line_errors(tmp_path, monkeypatch, records, expected):
    monkeypatch.chdir(tmp_path)
    cfg = study.check_study(quick(), "quick.yaml")
    for seed, record in records.items():
        _record(tmp_path, "acrobot", "sac", seed, record)
    with pytest.raises(study.PlanError) as err:
        study.packs(cfg)
    assert expected in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------------
# Reading a study file


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"study: quick\nseeds: [0, 1\ntasks: {}\n", r"study.yaml:3:\d+: not valid YAML: "),
        (b"", r"study.yaml: is empty; a study config is a mapping"),
        (b"# only a comment\n", r"study.yaml: is empty"),
        (b"- study\n- seeds\n", r"study.yaml: holds a list at the top level"),
        (b"study: qu\xffick\n", r"study.yaml: not UTF-8 text \(byte 0xff at offset 9\)"),
        ("study: quick\n".encode("utf-16"), r"study.yaml: not UTF-8 text"),
        (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", r"study.yaml: nested too deeply"),
        (None, r"study.yaml: is a directory, not a study config file"),
    ],
    ids=["yaml-error", "empty", "comment-only", "list", "not-utf8", "utf16", "deep", "directory"],
)
def test_check_names_the_file_and_line_of_an_unreadable_study(tmp_path, content, expected):
    path = tmp_path / "study.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    out = subprocess.run(
        [sys.executable, str(ROOT / "workflow/scripts/study.py"), "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith(f"study config error: {tmp_path}/"), lines[0]
    assert re.search(expected, lines[0]), lines[0]


def test_check_accepts_the_shipped_studies():
    for name in ("quick", "acrobot", "paper"):
        out = subprocess.run(
            [sys.executable, str(ROOT / "workflow/scripts/study.py"), "check", f"config/{name}.yaml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0 and f"valid study '{name}'" in out.stdout, out.stderr


# ----------------------------------------------------------------------------------------------------
# One source of truth


def test_schema_names_the_trainers_variants_and_tasks():
    s = study.schema()
    assert s["$defs"]["variant"]["enum"] == list(VARIANTS)
    assert s["$defs"]["task_name"]["enum"] == list(TASKS)
    raw = yaml.safe_load(study.SCHEMA_PATH.read_text())
    assert "enum" not in raw["$defs"]["variant"]  # the list lives in rlmu.train.variants only


def test_a_new_variant_preset_is_a_valid_study_variant(monkeypatch):
    cfg = quick()
    cfg["tasks"]["acrobot"]["variants"] = ["sac", "rlv_mirror"]
    with pytest.raises(study.PlanError, match="'rlv_mirror' is not one of"):
        study.check_study(copy.deepcopy(cfg), "quick.yaml")
    monkeypatch.setitem(VARIANTS, "rlv_mirror", copy.deepcopy(VARIANTS["rlv_nopair"]))
    study.check_study(cfg, "quick.yaml")


def test_schema_defaults_are_the_workflows_own():
    """Defaults filled in from the schema: pack size, container, GPUs; nothing of the trainer's."""
    cfg = quick()
    for key in ("pack_size", "image_size", "device"):
        cfg.pop(key, None)
    cfg["resources"]["train"].pop("gpu")
    study.check_study(cfg, "quick.yaml")
    assert cfg["pack_size"] == 1 and cfg["resources"]["train"]["gpu"] == 0
    assert "image_size" not in cfg and "device" not in cfg
