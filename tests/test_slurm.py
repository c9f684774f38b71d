"""The private single-node Slurm cluster and the `slurm-test` profile, end to end.

Needs Debian's slurmctld, slurmd, slurm-client and munge (scripts/install-system-deps.sh) and root.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

_spec = importlib.util.spec_from_file_location("slurm_cluster", ROOT / "workflow/scripts/slurm_cluster.py")
slurm_cluster = importlib.util.module_from_spec(_spec)
sys.modules["slurm_cluster"] = slurm_cluster
_spec.loader.exec_module(slurm_cluster)

_missing = slurm_cluster.missing_binaries()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(_missing),
        reason=f"Slurm/munge not installed (missing: {', '.join(_missing)}); "
        "run scripts/install-system-deps.sh",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="the private cluster runs its daemons as root"),
]

FLAKY_SNAKEFILE = r'''
rule all:
    input: "final.txt"

rule first:
    output: "first.txt"
    shell: "echo first > {output}"

# Exits 75 (preempted, as `rlmu train` does after checkpointing) on its first attempt only.
rule preempted_once:
    output: "second.txt"
    log: "logs/second.log"
    shell:
        """
        if [ ! -e attempted ]; then touch attempted; echo "attempt 1: preempted" >> {log}; exit 75; fi
        echo "attempt 2: done" >> {log}; echo second > {output}
        """

rule final:
    input: "first.txt", "second.txt"
    output: "final.txt"
    shell: "cat {input} > {output}"
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with slurm_cluster.start(tmp_path_factory.mktemp("slurm")) as c:
        yield c
    for name, pid in c_pids.items():
        assert not slurm_cluster._alive(pid, name), f"{name} (pid {pid}) still running after stop()"


c_pids: dict[str, int] = {}


LOOPBACK_PROGRAMS = ("slurmctld", "slurmd", "slurmstepd", "srun", "slurmscriptd")


def test_cluster_runs_a_batch_job(cluster, tmp_path):
    c_pids.update(cluster.pids)
    assert set(cluster.pids) == {"munged", "slurmctld", "slurmd"}
    assert cluster.node_state() == "idle"
    key = cluster.root / "munge/munge.key"
    assert key.stat().st_mode & 0o777 == 0o400
    out = tmp_path / "job.out"
    # The job (a child of slurmd) and its step see the daemons' host name, which resolves to loopback.
    sub = cluster.run(
        "sbatch", "--parsable", "-o", str(out), "--wrap", "hostname; srun sh -c 'hostname; sleep 5'"
    )
    job_id = sub.stdout.strip().split(";")[0]
    subprocess.run(
        [
            "timeout",
            "60",
            "sh",
            "-c",
            f"until squeue -h -j {job_id} -t RUNNING | grep -q .; do sleep 0.2; done",
        ],
        env=cluster.env,
        check=True,
    )
    # Every socket that slurmctld, slurmd, the job's slurmstepd processes and its srun listen on, read
    # from /proc while the step runs: all on 127.0.0.1.
    deadline = time.monotonic() + 30
    while True:
        procs = cluster.processes()
        programs = set(procs.values())
        if {"slurmstepd", "srun"} <= programs or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {"slurmctld", "slurmd", "slurmstepd", "srun"} <= programs, procs
    sockets = slurm_cluster.listening_sockets({p: n for p, n in procs.items() if n in LOOPBACK_PROGRAMS})
    listening = {s.program for s in sockets}
    # The check is not vacuous: the daemons always listen. srun's listening sockets exist only for part of
    # the step's life, so one sampled after they closed is not a failure; whatever is open is checked.
    assert {"slurmctld", "slurmd"} <= listening, sockets
    assert all(s.address == "127.0.0.1" for s in sockets), sockets
    subprocess.run(
        [
            "timeout",
            "60",
            "sh",
            "-c",
            f"until squeue -h -j {job_id} -t COMPLETED | grep -q .; do sleep 0.5; done",
        ],
        env=cluster.env,
        check=True,
    )
    assert out.read_text().split() == [slurm_cluster.HOST_NAME, slurm_cluster.HOST_NAME]


def test_profile_retries_a_preempted_job(cluster, tmp_path):
    """Through profiles/slurm-test: a job exiting 75 fails once, is resubmitted and then succeeds."""
    (tmp_path / "Snakefile").write_text(FLAKY_SNAKEFILE)
    cmd = ["timeout", "-k", "10", "300", SNAKEMAKE, "--profile", str(ROOT / "profiles/slurm-test")]
    out = subprocess.run(cmd, cwd=tmp_path, env=cluster.env, capture_output=True, text=True, timeout=330)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "final.txt").read_text() == "first\nsecond\n"
    assert (tmp_path / "attempted").exists()  # the first attempt ran (Snakemake clears a failed job's log)
    assert (tmp_path / "logs/second.log").read_text().splitlines() == ["attempt 2: done"]
    assert "Trying to restart job" in out.stderr + out.stdout
    # Slurm saw the first attempt fail and the resubmission complete (job completion log, no database).
    comp = (cluster.root / "log/jobcomp.txt").read_text()
    assert comp.count("JobState=FAILED") == 1 and comp.count("JobState=COMPLETED") >= 3


PACK_RLMU = r'''#!{python}
"""Stand-in for `rlmu train`: writes each member's run.json (with its pack) and logs its arguments."""
import json, os, sys
from pathlib import Path
import yaml
args = sys.argv[1:]
with open(os.environ["FAKE_RLMU_LOG"], "a") as f:
    # What the job was given: its Slurm CPUs and GPUs, then the command line.
    f.write(f"cpus={{os.environ.get('SLURM_CPUS_PER_TASK')}} gpus={{os.environ.get('SLURM_GPUS_ON_NODE')}} ")
    f.write(" ".join(args) + "\n")
kv = dict(a.split("=", 1) for a in args if "=" in a and not a.startswith("-"))
seeds = yaml.safe_load(kv["seeds"])
runs = Path(args[args.index("--runs-dir") + 1])
for seed in seeds:
    (runs / f"seed_{{seed}}").mkdir(parents=True, exist_ok=True)
    (runs / f"seed_{{seed}}" / "run.json").write_text(json.dumps({{"status": "completed", "pack": seeds}}))
'''


def test_pack_job_gets_one_gpu_and_the_studys_cpus(cluster, tmp_path):
    """A seed pack is one Slurm job with one GPU and resources.train.threads CPUs (its renderers')."""
    import yaml

    fake = tmp_path / "bin" / "rlmu"
    fake.parent.mkdir()
    fake.write_text(PACK_RLMU.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    cpus = 2
    cfg = {
        "study": "slurmpacks",
        "seeds": [0, 1, 2],
        "pack_size": 3,
        "device": "cpu",
        "rlmu_command": str(fake),
        "tasks": {"acrobot": {"variants": ["sac"], "data": {}, "train": {"epochs": 1}}},
        "stats": {},
        "container": {"enabled": False},
        "resources": {
            k: {
                "threads": cpus if k == "train" else 1,
                "mem_mb": 500,
                "runtime": 10,
                "gpu": int(k == "train"),
            }
            for k in ("data", "train", "report", "container")
        },
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results/slurmpacks/runs/acrobot/sac/seed_{s}/run.json" for s in (0, 1, 2)]
    cmd = [
        "timeout",
        "-k",
        "10",
        "300",
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "--profile",
        str(ROOT / "profiles/slurm-test"),
        *targets,
        "--configfile",  # after the targets: --configfile takes every argument up to the next option
        "study.yaml",
    ]
    env = {**cluster.env, "FAKE_RLMU_LOG": str(log)}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=330)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    calls = log.read_text().splitlines()
    assert calls[0].startswith(f"cpus={cpus} gpus=1 "), calls
    assert (
        len(calls) == 1
        and "seeds=[0,1,2]" in calls[0]
        and "--pack-dir results/slurmpacks/packs/acrobot/sac/seeds_0-1-2" in calls[0]
    )
    comp = [
        line
        for line in (cluster.root / "log/jobcomp.txt").read_text().splitlines()
        if f"WorkDir={tmp_path}" in line
    ]
    assert len(comp) == 1 and "JobState=COMPLETED" in comp[0] and f"ProcCnt={cpus}" in comp[0], comp


def _rlmu_ready() -> str | None:
    rlmu = Path(sys.executable).with_name("rlmu")
    for sub in (["train", "--help"], ["data", "generate", "--help"], ["report", "--help"]):
        r = subprocess.run([str(rlmu), *sub], capture_output=True, text=True)
        if r.returncode != 0:
            return f"`rlmu {' '.join(sub)}` is not available: {r.stderr.strip()[-200:]}"
    return None


def test_tiny_study_end_to_end(cluster, tmp_path):
    """A two-run Acrobot study through the real `rlmu` commands on the private cluster."""
    reason = _rlmu_ready()
    if reason:
        pytest.skip(reason)
    import yaml

    cfg = {
        "study": "slurmtiny",
        "seeds": [0],
        "device": "cpu",
        "tasks": {
            "acrobot": {
                "variants": ["sac", "rlv_nopair"],
                "data": {"transitions": 300, "quality": "medium"},
                "train": {
                    "epochs": 1,
                    "steps_per_epoch": 100,
                    "eval_episodes": 1,
                    "overrides": {"random_steps": 50, "agent.rlv.paired": False},
                },
            }
        },
        "stats": {"seed": 0, "reps": 200, "curve_reps": 100},
        "container": {"enabled": False, "image": "rlmu.sif"},
        "resources": {
            k: {"threads": 1, "mem_mb": 2000, "runtime": 30} for k in ("data", "train", "report", "container")
        },
    }
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    env = {**cluster.env, "PATH": f"{Path(sys.executable).parent}:{cluster.env['PATH']}"}
    cmd = [
        "timeout",
        "-k",
        "10",
        "900",
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "--profile",
        str(ROOT / "profiles/slurm-test"),
        "--configfile",
        "study.yaml",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=930)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    study = tmp_path / "results/slurmtiny"
    for variant in ("sac", "rlv_nopair"):
        assert (study / f"runs/acrobot/{variant}/seed_0/run.json").exists()
    assert (study / "report.html").stat().st_size > 0
