"""The run record ``run.json`` (``rlmu.schema.RUN_RECORD_KEYS``): status, versions, git revision, times; and
``first_update.csv``, the encoder gradient of every loss at the run's first update."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from rlmu.schema import (
    FIRST_UPDATE_COLUMNS,
    FIRST_UPDATE_FILE,
    PROGRESS_SCHEMA_VERSION,
    RUN_RECORD_FILE,
    RUN_RECORD_KEYS,
    RUN_STATUSES,
)
from rlmu.utils.io import atomic_write_json, atomic_write_text

_VERSIONED = ("torch", "numpy", "mujoco", "gymnasium", "metaworld", "rlmu")


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    """Versions of python and the packages a result depends on (None where not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    if out["rlmu"] is None:
        from rlmu import __version__

        out["rlmu"] = __version__
    return out


def git_revision(start: str | Path | None = None) -> str | None:
    """The commit of the git checkout holding the ``rlmu`` package (``+dirty`` if it has local changes),
    or None outside a git checkout."""
    where = Path(start) if start is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = rev.stdout.strip()
    return f"{sha}+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else sha


def new_record(cfg: Any, device: str) -> dict[str, Any]:
    """A fresh record for the run described by ``cfg`` (a ``TrainConfig``)."""
    return {
        "schema_version": PROGRESS_SCHEMA_VERSION,
        "study": cfg.study,
        "task": cfg.task,
        "variant": cfg.variant,
        "seed": cfg.seed,
        "status": "running",
        "epochs_done": 0,
        "epochs_total": cfg.epochs,
        "env_steps": 0,
        "started_at": now_iso(),
        "finished_at": None,
        "wall_time_s": 0.0,
        "device": device,
        "git_revision": git_revision(),
        "versions": package_versions(),
        "hostname": socket.gethostname(),
        "error": None,
        "pack": [cfg.seed],  # the seeds trained together in one process (the trainer sets it)
    }


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RUN_RECORD_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # torn or foreign: the trainer rewrites it


def write_record(run_dir: str | Path, record: dict[str, Any]) -> None:
    if record["status"] not in RUN_STATUSES:
        raise ValueError(f"unknown run status {record['status']!r}")
    missing = [k for k in RUN_RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(f"run record lacks {missing}")
    atomic_write_json(Path(run_dir) / RUN_RECORD_FILE, {k: record[k] for k in RUN_RECORD_KEYS})


def write_first_update(run_dir: str | Path, rows: list[tuple[str, float, float]]) -> None:
    """``first_update.csv``: for each loss that trains the encoder, its scale and the L2 norm of its scaled
    gradient over the run's encoder parameters at the first update (``Agent.encoder_grad_norms``); floats
    written with ``repr`` (exact)."""
    lines = [",".join(FIRST_UPDATE_COLUMNS)]
    lines += [f"{name},{float(scale)!r},{float(norm)!r}" for name, scale, norm in rows]
    atomic_write_text(Path(run_dir) / FIRST_UPDATE_FILE, "\n".join(lines) + "\n")


def read_first_update(run_dir: str | Path) -> dict[str, float]:
    """Loss -> encoder gradient norm from ``first_update.csv`` (empty when the run has none)."""
    path = Path(run_dir) / FIRST_UPDATE_FILE
    if not path.exists():
        return {}
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return {name: float(norm) for name, _, norm in (row.split(",") for row in rows)}
