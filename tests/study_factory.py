"""Synthetic but realistic study folders, written exactly as the trainer writes them (``rlmu.schema``).

Used by the aggregation/report tests and by ``benchmarks/stats_speed.py``. A study is
``{root}/runs/{task}/{variant}/seed_{n}/`` with ``progress.csv`` + ``run.json`` + ``config.yaml`` per run.

Learning curves: a converging seed follows a noisy logistic rise from the task's minimum return to a
variant-specific plateau, starting at a seed-specific epoch; a non-converging seed stays at the minimum
return with rare short blips and ends exactly at the minimum (so its final return is not above the task's
convergence threshold). Exactly ``round(p_converge * seeds)`` seeds converge, which lets tests know the
expected convergence counts.

``inject_fault`` damages one run directory in the ways a real study gets damaged (half-written last line,
wrong columns, NaN rows, broken run.json, a run still in progress).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlmu import schema
from rlmu.tasks import get_task


@dataclass(frozen=True)
class VariantSpec:
    p_converge: float = 0.7  # fraction of seeds that converge
    plateau: float = 0.8  # normalised score a converged seed reaches
    speed: float = 1.0  # >1 learns faster (the rise starts earlier)
    noise: float = 0.05  # std of evaluation noise, in normalised units


DEFAULT_VARIANTS: dict[str, VariantSpec] = {
    "sac": VariantSpec(p_converge=0.7, plateau=0.75, speed=1.0),
    "rlv": VariantSpec(p_converge=0.5, plateau=0.85, speed=2.0),
    "rlmu": VariantSpec(p_converge=0.8, plateau=0.8, speed=1.6),
}


def learning_curve(rng: np.random.Generator, epochs: int, spec: VariantSpec, converges: bool) -> np.ndarray:
    """Normalised evaluation score per epoch, shape ``(epochs,)``, values in [0, 1]."""
    t = np.arange(1, epochs + 1, dtype=float)
    if converges:
        start = rng.uniform(0.15, 0.55) * epochs / spec.speed
        width = rng.uniform(0.03, 0.08) * epochs
        plateau = float(np.clip(spec.plateau + rng.normal(0, 0.05), 0.05, 1.0))
        curve = plateau / (1.0 + np.exp(-(t - start) / width))
        curve = curve + rng.normal(0, spec.noise, size=epochs) * (curve > 0.02)
        # A converged seed ends clearly above the task minimum.
        curve[-1] = max(curve[-1], 0.05)
    else:
        curve = np.zeros(epochs)
        blips = rng.random(epochs) < 0.03
        curve[blips] = rng.uniform(0.01, 0.2, size=int(blips.sum()))
        curve[-1] = 0.0
    return np.clip(curve, 0.0, 1.0)


def _fmt(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else repr(float(x))


def write_run(
    study_dir: Path,
    task: str,
    variant: str,
    seed: int,
    scores: np.ndarray,
    *,
    steps_per_epoch: int = 1000,
    status: str = "completed",
    epochs_total: int | None = None,
    rng: np.random.Generator | None = None,
    error: str | None = None,
) -> Path:
    """Write one run directory from normalised scores per epoch; returns the run directory."""
    spec = get_task(task)
    rng = rng if rng is not None else np.random.default_rng(seed)
    run_dir = Path(study_dir) / "runs" / task / variant / f"seed_{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    epochs = len(scores)
    returns = spec.min_return + np.asarray(scores, float) * (spec.max_return - spec.min_return)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(schema.PROGRESS_COLUMNS)
    timing_buf = io.StringIO()
    timing_writer = csv.writer(timing_buf, lineterminator="\n")
    timing_writer.writerow(schema.TIMING_COLUMNS)
    wall = 0.0
    for i in range(epochs):
        sps = float(rng.uniform(40, 60))
        wall += steps_per_epoch / sps
        row = {
            "epoch": i + 1,
            "env_steps": (i + 1) * steps_per_epoch,
            "eval_return_mean": returns[i],
            "eval_return_std": abs(rng.normal(0, 0.05)) * (spec.max_return - spec.min_return),
            "eval_success_rate": float(scores[i] > 0.3),
            "train_return_mean": returns[i] * rng.uniform(0.8, 1.0),
            "loss_critic": abs(rng.normal(1.0, 0.2)),
            "loss_actor": rng.normal(-5.0, 1.0),
            "loss_alpha": rng.normal(0.0, 0.1),
            "alpha": float(np.exp(-i / 50.0)),
            "loss_inverse": abs(rng.normal(0.1, 0.02)) if variant != "sac" else np.nan,
            "loss_discriminator": abs(rng.normal(0.69, 0.01)) if variant != "sac" else np.nan,
            "loss_generator": abs(rng.normal(0.69, 0.01)) if variant != "sac" else np.nan,
            "loss_paired": np.nan,
            "loss_mem": abs(rng.normal(1.5, 0.1)) if "rlmu" in variant else np.nan,
            "loss_distance": np.nan,
            "updates": max(0, (i + 1) * steps_per_epoch - 1000),
        }
        writer.writerow(
            [
                row[c] if c in ("epoch", "env_steps", "updates") else _fmt(row[c])
                for c in schema.PROGRESS_COLUMNS
            ]
        )
        timing_writer.writerow([i + 1, _fmt(sps), _fmt(wall)])
    (run_dir / schema.PROGRESS_FILE).write_text(buf.getvalue())
    (run_dir / schema.TIMING_FILE).write_text(timing_buf.getvalue())
    record = {
        "schema_version": schema.PROGRESS_SCHEMA_VERSION,
        "study": Path(study_dir).name,
        "task": task,
        "variant": variant,
        "seed": seed,
        "status": status,
        "epochs_done": epochs,
        "epochs_total": epochs_total if epochs_total is not None else epochs,
        "env_steps": epochs * steps_per_epoch,
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": None if status in ("running", "preempted") else "2025-01-01T06:00:00+00:00",
        "wall_time_s": wall,
        "device": "cpu",
        "git_revision": "0" * 40,
        "versions": {"rlmu": "0.1.0"},
        "hostname": "synthetic",
        "error": error,
    }
    (run_dir / schema.RUN_RECORD_FILE).write_text(json.dumps(record, indent=2))
    (run_dir / schema.CONFIG_FILE).write_text(f"task: {task}\nvariant: {variant}\nseed: {seed}\n")
    return run_dir


def write_study(
    study_dir: Path,
    *,
    tasks: tuple[str, ...] = ("push",),
    variants: dict[str, VariantSpec] | None = None,
    seeds: int = 5,
    epochs: int = 30,
    steps_per_epoch: int = 1000,
    rng_seed: int = 0,
) -> Path:
    """Write a complete study (every run completed); returns ``study_dir``."""
    study_dir = Path(study_dir)
    variants = variants if variants is not None else DEFAULT_VARIANTS
    rng = np.random.default_rng(rng_seed)
    for task in tasks:
        for variant, spec in variants.items():
            n_conv = int(round(spec.p_converge * seeds))
            converging = set(rng.permutation(seeds)[:n_conv].tolist())
            for seed in range(seeds):
                scores = learning_curve(rng, epochs, spec, seed in converging)
                write_run(study_dir, task, variant, seed, scores, steps_per_epoch=steps_per_epoch, rng=rng)
    (study_dir / "config.yaml").write_text(
        "study: " + study_dir.name + "\n"
        f"tasks: [{', '.join(tasks)}]\n"
        f"variants: [{', '.join(variants)}]\n"
        f"seeds: {seeds}\nepochs: {epochs}\n"
    )
    return study_dir


FAULTS = (
    "truncated",
    "wrong_columns",
    "missing_column",
    "nan_rows",
    "bad_run_json",
    "missing_run_json",
    "in_progress",
    "missing_epochs",
)


def inject_fault(run_dir: Path, kind: str) -> Path:
    """Damage one run directory; returns the file that was damaged."""
    run_dir = Path(run_dir)
    progress = run_dir / schema.PROGRESS_FILE
    record_path = run_dir / schema.RUN_RECORD_FILE
    if kind == "truncated":  # the writer died in the middle of the last line
        text = progress.read_text()
        progress.write_text(text[: len(text) - 1 - len(text.rstrip("\n").rsplit("\n", 1)[-1]) // 2])
        return progress
    if kind == "wrong_columns":
        lines = progress.read_text().split("\n")
        lines[0] = lines[0].replace("eval_return_mean", "return")
        progress.write_text("\n".join(lines))
        return progress
    if kind == "missing_column":  # an older writer without the last column
        lines = progress.read_text().rstrip("\n").split("\n")
        progress.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
        return progress
    if kind == "nan_rows":
        lines = progress.read_text().rstrip("\n").split("\n")
        fields = lines[3].split(",")
        fields[schema.PROGRESS_COLUMNS.index("eval_return_mean")] = "nan"
        lines[3] = ",".join(fields)
        progress.write_text("\n".join(lines) + "\n")
        return progress
    if kind == "bad_run_json":
        record_path.write_text(record_path.read_text()[:40])
        return record_path
    if kind == "missing_run_json":
        record_path.unlink()
        return record_path
    if kind in ("in_progress", "missing_epochs"):
        record = json.loads(record_path.read_text())
        if kind == "in_progress":
            record["status"] = "running"
        record["epochs_total"] = record["epochs_done"] + 10
        record_path.write_text(json.dumps(record, indent=2))
        return record_path
    raise ValueError(f"unknown fault {kind!r}; choose one of {FAULTS}")
