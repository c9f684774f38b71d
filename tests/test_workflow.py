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


def train_jobs(counts: dict[str, int]) -> dict[str, int]:
    """The training jobs of a dry run's job table: one rule per seed pack, train_{task}_{variant}_seeds_..."""
    return {rule: n for rule, n in counts.items() if rule.startswith("train_")}


def pack_rule(task: str, variant: str, seeds) -> str:
    return f"train_{task}_{variant}_seeds_{'_'.join(str(s) for s in seeds)}"


def dry_run_jobs(output: str) -> dict[str, dict[str, str]]:
    """rule -> {"input": ..., "output": ..., "shell": ...} of each job a dry run (-n -p) lists."""
    jobs: dict[str, dict[str, str]] = {}
    current = None
    for line in output.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line)
        if m:
            current = jobs.setdefault(m.group(1), {})
            continue
        if current is None:
            continue
        m = re.match(r"^    (input|output|resources|threads): (.*)$", line)
        if m:
            current[m.group(1)] = m.group(2)
        elif line.startswith("Shell command: "):
            current["shell"] = line.removeprefix("Shell command: ")
    return jobs


def test_paper_dry_run_has_one_job_per_pack():
    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    assert cfg["pack_size"] == 10 and all(
        len(t.get("seeds", cfg["seeds"])) == 10 for t in cfg["tasks"].values()
    )
    # --cores 16: a dry run shows a job's threads only up to the cores it is given.
    out = snakemake("-n", "--configfile", "config/paper.yaml", "--cores", "16")
    assert out.returncode == 0, out.stderr + out.stdout
    counts, jobs = job_counts(out.stdout), dry_run_jobs(out.stdout)
    for rule in train_jobs(counts):  # one GPU per pack job, CPUs for its renderers
        assert (
            jobs[rule]["threads"] == str(cfg["resources"]["train"]["threads"])
            and cfg["resources"]["train"]["threads"] > 1
        )
        assert "gpu=1" in jobs[rule]["resources"].split(", ")
    # 10 seeds in packs of 10: one training job per (task, variant), 14 on push + 4 on drawer.
    expected = {pack_rule(task, v, range(10)): 1 for task, t in cfg["tasks"].items() for v in t["variants"]}
    assert train_jobs(counts) == expected
    assert counts["observation_data"] == 2 and counts["paired_data"] == 2  # push and drawer (RLV variants)
    assert counts["container"] == 1  # paper runs in the GPU image
    for rule in ("aggregate", "stats", "report", "all"):
        assert counts[rule] == 1
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_quick_dry_run_has_no_container_job():
    out = snakemake("-n", "--configfile", "config/quick.yaml")
    assert out.returncode == 0, out.stderr + out.stdout
    counts = job_counts(out.stdout)
    assert "container" not in counts
    # Acrobot: 10 variants x seeds [0, 1] (one pack each); push: 3 variants x seed [0].
    assert len(train_jobs(counts)) == 10 + 3 and set(train_jobs(counts).values()) == {1}
    assert pack_rule("acrobot", "rlmu", [0, 1]) in counts and pack_rule("push", "rlv", [0]) in counts
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


def test_missing_configfile_is_a_clear_error(tmp_path):
    out = snakemake("-n", "--directory", str(tmp_path))
    assert out.returncode != 0 and "no study configuration: add --configfile" in out.stderr + out.stdout


def _study(tmp_path, edit=None, name="study.yaml") -> Path:
    cfg = yaml.safe_load((ROOT / "config/quick.yaml").read_text())
    if edit:
        edit(cfg)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_pack_jobs_train_their_seeds_and_output_their_members_run_records(tmp_path):
    """Seeds are chunked in list order (each pack sorted); a task's pack_size overrides the study's;
    a pack's outputs are its members' run.json files."""

    def edit(cfg):
        cfg["seeds"], cfg["pack_size"] = [4, 2, 7, 0, 9, 1, 3], 3
        cfg["tasks"]["acrobot"]["variants"] = ["sac", "rlmu"]
        cfg["tasks"]["push"].update(seeds=[0, 1, 2], pack_size=2, variants=["rlv"])

    study = _study(tmp_path, edit)
    out = snakemake("-n", "-p", "--configfile", str(study), "--directory", str(tmp_path))
    assert out.returncode == 0, out.stderr + out.stdout
    expected = {("acrobot", v, p) for v in ("sac", "rlmu") for p in ((2, 4, 7), (0, 1, 9), (3,))} | {
        ("push", "rlv", (0, 1)),
        ("push", "rlv", (2,)),
    }
    assert set(train_jobs(job_counts(out.stdout))) == {pack_rule(*e) for e in expected}
    jobs = dry_run_jobs(out.stdout)
    for task, variant, seeds in expected:
        job = jobs[pack_rule(task, variant, seeds)]
        runs = f"results/quick/runs/{task}/{variant}"
        assert job["output"].split(", ") == [f"{runs}/seed_{s}/run.json" for s in seeds]
        label = "-".join(str(s) for s in seeds)
        assert (
            f"--runs-dir {runs} --pack-dir results/quick/packs/{task}/{variant}/seeds_{label} "
            in job["shell"]
        )
        assert f"'seeds=[{','.join(str(s) for s in seeds)}]'" in job["shell"] and " seed=" not in job["shell"]


def test_training_jobs_need_observation_data_only_when_their_variant_uses_it(tmp_path):
    def edit(cfg):
        cfg["tasks"]["push"]["variants"] = ["sac", "virl_both", "rlv_nopair", "rlv"]
        cfg["tasks"]["acrobot"]["variants"] = ["sac", "virl_spatial"]

    out = snakemake("-n", "-p", "--configfile", str(_study(tmp_path, edit)), "--directory", str(tmp_path))
    assert out.returncode == 0, out.stderr + out.stdout
    counts, jobs = job_counts(out.stdout), dry_run_jobs(out.stdout)
    data = "results/quick/data"
    for rule in (
        pack_rule("push", "sac", [0]),
        pack_rule("acrobot", "sac", [0, 1]),
        pack_rule("acrobot", "virl_spatial", [0, 1]),  # no other task's videos of its kind
    ):
        assert "input" not in jobs[rule] and "data." not in jobs[rule]["shell"], jobs[rule]
        assert "virl.other_videos" not in jobs[rule]["shell"], jobs[rule]
    # VIRL on push: the drawer's videos in the agent's domain are its other-task negatives.
    virl = jobs[pack_rule("push", "virl_both", [0])]
    assert virl["input"] == f"{data}/drawer_robot_videos.npz" and "data." not in virl["shell"], virl
    assert f"'virl.other_videos=[{data}/drawer_robot_videos.npz]'" in virl["shell"], virl
    assert "--domain robot" in jobs["robot_videos"]["shell"] and counts["robot_videos"] == 1
    assert jobs[pack_rule("push", "rlv_nopair", [0])]["input"] == f"{data}/push_observations.npz"
    assert (
        jobs[pack_rule("push", "rlv", [0])]["input"]
        == f"{data}/push_observations.npz, {data}/push_paired.npz"
    )
    # Acrobot's variants use no observation data here: none is generated for it.
    assert counts["observation_data"] == 1 and f"{data}/acrobot_observations.npz" not in out.stdout


def test_trainer_defaults_are_not_restated(tmp_path):
    """A budget the study leaves out is not passed: the trainer's config model supplies it."""
    from rlmu.train.config import TrainConfig

    def edit(cfg):
        del cfg["tasks"]["push"]
        cfg.pop("image_size")
        cfg["tasks"]["acrobot"].update(variants=["rlv_nopair"], train={}, data={})

    out = snakemake("-n", "-p", "--configfile", str(_study(tmp_path, edit)), "--directory", str(tmp_path))
    assert out.returncode == 0, out.stderr + out.stdout
    jobs = dry_run_jobs(out.stdout)
    shell = jobs[pack_rule("acrobot", "rlv_nopair", [0, 1])]["shell"]
    for key in ("epochs=", "steps_per_epoch=", "eval_episodes=", "random_steps="):
        assert f" {key}" not in shell, shell
    assert f" image_size={TrainConfig.model_fields['image_size'].default} " in shell
    generate = jobs["observation_data"]["shell"]
    assert "--transitions" not in generate and "--seed" not in generate and "--noise" not in generate, (
        generate
    )


@pytest.mark.parametrize(
    "edit, key",
    [
        (
            lambda c: c["tasks"]["acrobot"]["train"]["overrides"].update({"agent.sac.lr": -1}),
            "tasks.acrobot.train.overrides.agent.sac.lr: Input should be greater than 0",
        ),
        (
            lambda c: c["tasks"]["acrobot"]["train"]["overrides"].update({"agent.sac.lrr": 0.1}),
            "tasks.acrobot.train.overrides.agent.sac.lrr: unknown key",
        ),
        (lambda c: c["tasks"]["push"]["train"].update(epochs=0), "tasks.push.train.epochs: "),
        (
            lambda c: c["tasks"]["push"]["data"].update(domain="martian"),
            "tasks.push.data.domain: unknown domain",
        ),
        (lambda c: c["tasks"]["acrobot"]["data"].update(domain="human_dark"), "tasks.acrobot.data.domain: "),
        (lambda c: c["tasks"]["acrobot"]["data"].update(quality="perfect"), "tasks.acrobot.data.quality: "),
        (lambda c: c.update(converge_thresholds={"acrobot": float("nan")}), "converge_thresholds.acrobot: "),
        (lambda c: c.update(study=".."), "study: "),
        (lambda c: c.update(device="tpu"), "device: "),
        # RLV's paired loss on a state task, which has no paired images.
        (
            lambda c: c["tasks"]["acrobot"].update(variants=["rlv"], train={"epochs": 1}),
            "tasks.acrobot.variants: rlv: variant 'rlv' uses the paired loss: set data.paired",
        ),
    ],
    ids=[
        "negative-lr",
        "unknown-override",
        "epochs-0",
        "bad-domain",
        "domain-on-state-task",
        "bad-quality",
        "nan-threshold",
        "study-dotdot",
        "bad-device",
        "rlv-without-paired-data",
    ],
)
def test_dry_run_rejects_what_the_jobs_would_reject(tmp_path, edit, key):
    """Each run config is resolved by the trainer's own config model when the DAG is built."""
    study = _study(tmp_path, edit)
    out = snakemake("-n", "--configfile", str(study), "--directory", str(tmp_path))
    assert out.returncode != 0
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stdout + out.stderr
    assert lines[0].startswith(f"study config error: {study}: ") and key in lines[0], lines[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda c: c["tasks"]["acrobot"]["train"].update(epochz=3),
            "tasks.acrobot.train.epochz: unknown key",
        ),
        (lambda c: c.update(colour="red"), "colour: unknown key"),
        (lambda c: c["tasks"]["acrobot"]["variants"].append("rlv_jitter3"), "'rlv_jitter3' is not one of"),
        (lambda c: c.update(seeds=[0, 0]), "seeds: [0, 0] has non-unique elements"),
        (lambda c: c["tasks"].update(reacher=c["tasks"]["acrobot"]), "'reacher' is not one of"),
        (lambda c: c.update(pack_size=0), "pack_size: 0 is less than the minimum of 1"),
    ],
)
def test_bad_config_stops_before_any_job_with_one_line(tmp_path, edit, expected):
    study = _study(tmp_path, edit, name="bad.yaml")
    out = snakemake("-n", "--configfile", str(study), "--directory", str(tmp_path))
    text = (out.stdout + out.stderr).strip()
    assert out.returncode != 0
    assert (
        text.splitlines() == [text] and text.startswith(f"study config error: {study}: ") and expected in text
    ), text
    assert "Job stats" not in text and not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "content",
    [b"study: [quick\nseeds: 1\n", b"", b"- study\n- seeds\n", b"study: qu\xffick\n", None],
    ids=["yaml-error", "empty", "top-level-list", "not-utf8", "directory"],
)
def test_unreadable_configfile_stops_snakemake_before_any_job(tmp_path, content):
    """Snakemake reads --configfile itself, before the workflow's code runs: it must still stop there.

    Its own message is one line for a YAML error, an empty file and a top-level list; for a non-UTF-8
    file or a directory it prints a traceback of its own (docs/workflow.md). workflow/scripts/study.py
    check names the file and line (tests/test_workflow_study.py).
    """
    path = tmp_path / "study.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    out = snakemake("-n", "--configfile", str(path), "--directory", str(tmp_path / "work"))
    assert out.returncode != 0
    assert "Job stats" not in out.stdout and not (tmp_path / "work" / "results").exists()


# ----------------------------------------------------------------------------------------------------
# Execution with a fake `rlmu`

FAKE_RLMU = r'''#!{python}
"""Stand-in for the rlmu CLI: writes what each step declares, logs each call to $FAKE_RLMU_LOG."""
import json, os, sys, time
from pathlib import Path
import yaml
args = sys.argv[1:]
with open(os.environ["FAKE_RLMU_LOG"], "a") as f:
    f.write(" ".join(args) + "\n")
def opt(name):
    return args[args.index(name) + 1]
if args[0] == "data":
    Path(opt("--out")).write_text("data")
elif args[0] == "train":
    kv = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    seeds = yaml.safe_load(kv["seeds"])
    time.sleep(float(os.environ.get("FAKE_TRAIN_SECONDS", "0")) if 1 in seeds else 0)
    Path(opt("--pack-dir")).mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        run_dir = Path(opt("--runs-dir")) / f"seed_{{seed}}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "progress.csv").write_text("epoch\n1\n")
        (run_dir / "run.json").write_text(json.dumps({{"status": "completed", "seed": seed, "pack": seeds}}))
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
        "study": "tiny",
        "seeds": [0, 1],
        "device": "cpu",
        "rlmu_command": "rlmu",  # the fake one on PATH
        "tasks": {
            "acrobot": {
                "variants": ["sac", "rlmu"],
                "data": {"transitions": 10, "quality": "low"},
                "train": {"epochs": 1, "steps_per_epoch": 10},
            }
        },
        "stats": {"seed": 0, "reps": 100, "curve_reps": 100},
        "container": {"enabled": False, "image": "rlmu.sif"},
        "resources": {
            k: {"threads": 1, "mem_mb": 100, "runtime": 1} for k in ("data", "train", "report", "container")
        },
    }
    work = tmp_path / "work"
    work.mkdir()
    return work, env, cfg, log


def train_calls(log: Path) -> dict[str, int]:
    """Member run directory -> how many training calls trained it."""
    calls: dict[str, int] = {}
    for line in log.read_text().splitlines():
        if line.startswith("train "):
            runs_dir = line.split("--runs-dir ", 1)[1].split()[0]
            seeds = yaml.safe_load(line.split(" seeds=", 1)[1].split()[0])
            for seed in seeds:
                calls[f"{runs_dir}/seed_{seed}"] = calls.get(f"{runs_dir}/seed_{seed}", 0) + 1
    return calls


def pack_calls(log: Path) -> list[str]:
    return [
        line.split("--pack-dir ", 1)[1].split()[0]
        for line in log.read_text().splitlines()
        if line.startswith("train ")
    ]


def test_adding_seeds_forms_packs_of_the_new_seeds_only(fake_env):
    work, env, cfg, log = fake_env
    cfg.update(seeds=[0, 1, 2], pack_size=2)
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    common = ["--profile", str(ROOT / "profiles/local"), "--configfile", "study.yaml", "--cores", "2"]
    first = snakemake(*common, cwd=work, env=env)
    assert first.returncode == 0, first.stderr
    packs = "results/tiny/packs/acrobot"
    assert sorted(pack_calls(log)) == sorted(
        f"{packs}/{v}/{p}" for v in ("sac", "rlmu") for p in ("seeds_0-1", "seeds_2")
    )
    assert (work / "results/tiny/report.html").exists()

    # Three more seeds and a larger pack size: the finished packs stay as recorded in their run.json
    # files ([0, 1] and [2], not re-chunked into [0, 1, 2]); only the new seeds form a pack.
    cfg.update(seeds=[0, 1, 2, 3, 4, 5], pack_size=3)
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(*common, "-n", cwd=work, env=env)
    assert dry.returncode == 0, dry.stderr
    counts = job_counts(dry.stdout)
    assert train_jobs(counts) == {pack_rule("acrobot", v, [3, 4, 5]): 1 for v in ("sac", "rlmu")}
    assert counts["aggregate"] == counts["stats"] == counts["report"] == counts["all"] == 1
    assert counts["total"] == 2 + 4  # no data job, nothing retrained
    second = snakemake(*common, cwd=work, env=env)
    assert second.returncode == 0, second.stderr
    calls = train_calls(log)
    assert len(calls) == 12 and set(calls.values()) == {1}  # no finished run trained twice
    assert (work / "results/tiny/aggregate/runs.parquet").read_text() == "12"

    # A member of a recorded pack that lost its run.json is trained again with its whole pack (the
    # checkpoint is the pack's), not in a new pack of its own; the aggregate needs it once seed 6 is added.
    (work / "results/tiny/runs/acrobot/sac/seed_1/run.json").unlink()
    cfg.update(seeds=[0, 1, 2, 3, 4, 5, 6])
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(*common, "-n", cwd=work, env=env)
    assert dry.returncode == 0, dry.stderr
    assert train_jobs(job_counts(dry.stdout)) == {
        pack_rule("acrobot", "sac", [0, 1]): 1,
        pack_rule("acrobot", "sac", [6]): 1,
        pack_rule("acrobot", "rlmu", [6]): 1,
    }


def test_committed_results_resume_without_retraining_after_the_data_is_regenerated(fake_env):
    """A fresh clone of a study's committed results (run records, no datasets, no Snakemake metadata,
    every file's time the checkout's): only new seeds train. The datasets the new packs need are
    regenerated, newer than every committed run, and the finished packs are not trained again."""
    work, env, cfg, log = fake_env
    cfg.update(results_dir="results/reference/tiny", pack_size=2)
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    common = ["--profile", str(ROOT / "profiles/local"), "--configfile", "study.yaml", "--cores", "2"]
    first = snakemake(*common, cwd=work, env=env)
    assert first.returncode == 0, first.stderr
    study_dir = work / "results/reference/tiny"
    assert (study_dir / "report.html").exists() and not (work / "results/tiny").exists()

    # The clone: no datasets (not committed), no .snakemake, and the checkout's times on every file.
    for path in (study_dir / "data", work / ".snakemake"):
        subprocess.run(["rm", "-rf", str(path)], check=True)
    now = time.time()
    for path in study_dir.rglob("*"):
        os.utime(path, (now, now))
    dry = snakemake(*common, "-n", cwd=work, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "rule observation_data" not in dry.stdout and not re.search(r"^rule train_", dry.stdout, re.M)

    # A new seed: its packs need the dataset (rlmu reads observation data), which is generated again.
    cfg.update(seeds=[0, 1, 2])
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(*common, "-n", cwd=work, env=env)
    assert dry.returncode == 0, dry.stderr
    counts = job_counts(dry.stdout)
    assert train_jobs(counts) == {pack_rule("acrobot", v, [2]): 1 for v in ("sac", "rlmu")}
    assert counts["observation_data"] == 1
    second = snakemake(*common, cwd=work, env=env)
    assert second.returncode == 0, second.stderr
    calls = train_calls(log)
    assert len(calls) == 6 and set(calls.values()) == {1}, calls  # no committed run trained twice


def test_killed_snakemake_resumes_without_redoing_finished_runs(fake_env):
    work, env, cfg, log = fake_env
    (work / "study.yaml").write_text(yaml.safe_dump(cfg))
    env = {**env, "FAKE_TRAIN_SECONDS": "60"}  # seed 1 runs are still training when the kill comes
    # 4 job slots: all four runs start together; seed 0 runs finish at once, seed 1 runs are still going.
    cmd = [
        "timeout",
        "-k",
        "10",
        str(TIMEOUT),
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "--profile",
        str(ROOT / "profiles/local"),
        "--configfile",
        "study.yaml",
        "--cores",
        "4",
    ]
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
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
    rerun = snakemake(
        "--profile",
        str(ROOT / "profiles/local"),
        "--configfile",
        "study.yaml",
        "--cores",
        "2",
        cwd=work,
        env=env,
    )
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
    env = dict(
        os.environ,
        PATH=f"{fake_bin}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        RLMU_SLURM_ACCOUNT="acct",
        RLMU_SLURM_PARTITION="part",
    )
    cmd = ["timeout", "-k", "10", str(TIMEOUT), SNAKEMAKE, "--profile", "slurm", "-n", "-d", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT + 30)
    assert out.returncode == 0, out.stderr + out.stdout
    counts, jobs = job_counts(out.stdout), dry_run_jobs(out.stdout)
    assert (
        len(train_jobs(counts)) == 14 + 4 and counts["container"] == 1
    )  # one pack of 10 per (task, variant)
    # One GPU per pack job (sbatch --gpus=1), and the study's extra sbatch options for training.
    for rule in train_jobs(counts):
        resources = jobs[rule]["resources"].split(", ")
        assert "gpu=1" in resources and "slurm_extra=--signal=USR1@600" in resources, resources
