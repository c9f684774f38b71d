"""The Snakemake workflow: DAG size of the paper study, lint, config validation, rerun behaviour.

Dry runs use the real Snakefile. The execution tests replace the `rlmu` command with a fake one on PATH
(it writes the files each step declares and logs every call), so they test the workflow's plumbing
(what reruns after a kill, what adding seeds reruns) in seconds, independently of training speed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TIMEOUT = 240


def snakemake(*args, cwd=ROOT, env=None, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    # `timeout -k`: a snakemake that cannot read job status never exits on its own.
    cmd = ["timeout", "-k", "10", str(timeout), SNAKEMAKE, "-s", str(ROOT / "Snakefile"), *args]
    if Path(cwd) == ROOT:
        # Plan in an empty working directory: a study the user is running in results/ must neither
        # change what the tests see nor be touched by them (Snakemake keeps locks and metadata there).
        cmd += ["--directory", tempfile.mkdtemp(prefix="rlmu-smk-")]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout + 30)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def test_paper_dry_run_lists_every_run():
    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    expected_train = sum(len(t["variants"]) * len(t.get("seeds", cfg["seeds"])) for t in cfg["tasks"].values())
    image_tasks = [t for t in cfg["tasks"] if t in ("push", "drawer")]
    out = snakemake("-n", "--configfile", "config/paper.yaml")
    assert out.returncode == 0, out.stderr + out.stdout
    counts = job_counts(out.stdout)
    assert expected_train == 14 * 10 + 4 * 10
    assert counts["train"] == expected_train
    assert counts["observation_data"] == len(cfg["tasks"])
    assert counts["paired_data"] == len(image_tasks)
    assert counts["container"] == 1  # paper runs in the GPU image
    for rule in ("aggregate", "stats", "report", "all"):
        assert counts[rule] == 1
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_quick_dry_run_has_no_container_job():
    out = snakemake("-n", "--configfile", "config/quick.yaml")
    assert out.returncode == 0, out.stderr + out.stdout
    counts = job_counts(out.stdout)
    assert "container" not in counts
    assert counts["train"] == 10 * 2 + 3 * 1
    assert counts["paired_data"] == 1  # push only: acrobot has no images


def test_lint_is_clean():
    # Linted with the paper study, which runs every job in the image (the quick study runs without a
    # container by design, so each rule would be flagged for having none); the image-build rule declares
    # its software as a conda environment.
    out = snakemake("--lint", "--configfile", "config/paper.yaml")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "Lints for" not in text, text
    assert "your workflow is in a good condition" in text, text


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["tasks"]["acrobot"]["train"].update(epochz=3), "epochz"),
        (lambda c: c["tasks"]["acrobot"]["variants"].append("rlv_jitter3"), "rlv_jitter3"),
        (lambda c: c.update(seeds=[0, 0]), "non-unique"),
        (lambda c: c["tasks"].update(reacher=c["tasks"]["acrobot"]), "reacher"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, edit, expected):
    cfg = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    edit(cfg)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = snakemake("-n", "--configfile", str(bad), "--directory", str(tmp_path))
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "Error validating config file" in text and expected in text, text
    assert "Job stats" not in text and not (tmp_path / "results").exists()


def test_missing_configfile_is_a_clear_error(tmp_path):
    out = snakemake("-n", "--directory", str(tmp_path))
    assert out.returncode != 0 and "no study configuration: add --configfile" in out.stderr + out.stdout


# ----------------------------------------------------------------------------------------------------
# Execution with a fake `rlmu`

FAKE_RLMU = r'''#!{python}
"""Stand-in for the rlmu CLI: writes what each step declares, logs each call to $FAKE_RLMU_LOG."""
import json, os, sys, time
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_RLMU_LOG"], "a") as f:
    f.write(" ".join(args) + "\n")
def opt(name):
    return args[args.index(name) + 1]
if args[0] == "data":
    Path(opt("--out")).write_text("data")
elif args[0] == "train":
    run_dir = Path(opt("--run-dir"))
    run_dir.mkdir(parents=True, exist_ok=True)
    kv = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    time.sleep(float(os.environ.get("FAKE_TRAIN_SECONDS", "0")) if kv["seed"] == "1" else 0)
    (run_dir / "progress.csv").write_text("epoch\n1\n")
    (run_dir / "run.json").write_text(json.dumps({{"status": "completed", "seed": int(kv["seed"])}}))
elif args[0] == "aggregate":
    d = Path(args[1]) / "aggregate"; d.mkdir(exist_ok=True)
    (d / "runs.parquet").write_text(str(len(list(Path(args[1]).glob("runs/*/*/seed_*/run.json")))))
    (d / "manifest.json").write_text("{{}}")
elif args[0] == "stats":
    d = Path(args[1]) / "stats"; d.mkdir(exist_ok=True); (d / "meta.json").write_text("{{}}")
elif args[0] == "report":
    (Path(args[1]) / "report.html").write_text("<html></html>")
    (Path(args[1]) / "report.md").write_text("# report")
'''


@pytest.fixture
def fake_env(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "rlmu"
    exe.write_text(FAKE_RLMU.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_RLMU_LOG": str(log)}
    cfg = {
        "study": "tiny", "seeds": [0, 1], "device": "cpu", "rlmu_command": "rlmu",  # the fake one on PATH
        "tasks": {"acrobot": {"variants": ["sac", "rlmu"], "data": {"transitions": 10, "quality": "low"},
                              "train": {"epochs": 1, "steps_per_epoch": 10}}},
        "stats": {"seed": 0, "reps": 100, "curve_reps": 100},
        "container": {"enabled": False, "image": "rlmu.sif"},
        "resources": {k: {"threads": 1, "mem_mb": 100, "runtime": 1} for k in ("data", "train", "report", "container")},
    }
    work = tmp_path / "work"
    work.mkdir()
    return work, env, cfg, log


def train_calls(log: Path) -> dict[str, int]:
    calls: dict[str, int] = {}
    for line in log.read_text().splitlines():
        if line.startswith("train "):
            run = line.split("--run-dir ", 1)[1].split()[0]
            calls[run] = calls.get(run, 0) + 1
    return calls


def test_adding_seeds_trains_only_the_new_runs(fake_env):
    work, env, cfg, log = fake_env
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    common = ["--profile", str(ROOT / "profiles/local"), "--configfile", "study.yaml", "--cores", "2"]
    first = snakemake(*common, cwd=work, env=env)
    assert first.returncode == 0, first.stderr
    assert len(train_calls(log)) == 4 and (work / "results/tiny/report.html").exists()

    cfg["seeds"] = [0, 1, 2]
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(*common, "-n", cwd=work, env=env)
    counts = job_counts(dry.stdout)
    assert counts["train"] == 2 and "observation_data" not in counts  # seed 2 of sac and rlmu only
    assert counts["aggregate"] == counts["stats"] == counts["report"] == 1
    second = snakemake(*common, cwd=work, env=env)
    assert second.returncode == 0, second.stderr
    calls = train_calls(log)
    assert len(calls) == 6 and set(calls.values()) == {1}  # no finished run trained twice
    assert (work / "results/tiny/aggregate/runs.parquet").read_text() == "6"


def test_killed_snakemake_resumes_without_redoing_finished_runs(fake_env):
    work, env, cfg, log = fake_env
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    env = {**env, "FAKE_TRAIN_SECONDS": "60"}  # seed 1 runs are still training when the kill comes
    # 4 job slots: all four runs start together; seed 0 runs finish at once, seed 1 runs are still going.
    cmd = ["timeout", "-k", "10", str(TIMEOUT), SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--profile",
           str(ROOT / "profiles/local"), "--configfile", "study.yaml", "--cores", "4"]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    runs = work / "results/tiny/runs/acrobot"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            finished = {str(p.parent.relative_to(work)) for p in runs.glob("*/seed_*/run.json")}
            running = set(train_calls(log)) - finished
            if finished and running:
                # Let snakemake record the finished jobs; a job whose end it has not recorded yet counts as
                # incomplete and is rerun (rightly: rlmu train then finds its final checkpoint).
                time.sleep(3)
                break
            time.sleep(0.1)
        else:
            pytest.fail("training jobs did not start in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its running jobs, as a lost node would
        proc.wait()
    finished = {str(p.parent.relative_to(work)) for p in runs.glob("*/seed_*/run.json")}
    assert running and not running & finished

    env["FAKE_TRAIN_SECONDS"] = "0"
    # A killed snakemake leaves its lock: --unlock is the documented first step (docs/workflow.md).
    unlock = snakemake("--configfile", "study.yaml", "--unlock", cwd=work, env=env)
    assert unlock.returncode == 0, unlock.stderr
    rerun = snakemake("--profile", str(ROOT / "profiles/local"), "--configfile", "study.yaml", "--cores", "2",
                      cwd=work, env=env)
    assert rerun.returncode == 0, rerun.stderr
    calls = train_calls(log)
    assert all(calls[r] == 1 for r in finished), calls  # finished before the kill: not redone
    assert all(calls[r] == 2 for r in running), calls  # interrupted: run again (resumes in rlmu train)
    assert len(calls) == 4 and (work / "results/tiny/report.html").exists()


def test_profile_slurm_from_repo_root_plans_the_paper_study(tmp_path):
    """`snakemake --profile slurm` (no other argument) finds ./slurm and plans the paper study on Slurm.

    A dry run only asks whether an `apptainer` command exists (the image cannot be built here), so a
    one-line stand-in that reports a version is put on PATH; nothing is executed.
    """
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "apptainer").write_text("#!/bin/sh\necho 'apptainer version 1.3.4'\n")
    (fake_bin / "apptainer").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake_bin}:{Path(sys.executable).parent}:{os.environ['PATH']}",
               RLMU_SLURM_ACCOUNT="acct", RLMU_SLURM_PARTITION="part")
    cmd = ["timeout", "-k", "10", str(TIMEOUT), SNAKEMAKE, "--profile", "slurm", "-n", "-d", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT + 30)
    assert out.returncode == 0, out.stderr + out.stdout
    counts = job_counts(out.stdout)
    assert counts["train"] == 14 * 10 + 4 * 10 and counts["container"] == 1
