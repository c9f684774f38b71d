"""Collect every run of a study into tidy tables (``rlmu aggregate STUDY_DIR``).

Reads ``STUDY_DIR/runs/{task}/{variant}/seed_{n}/{progress.csv,run.json}`` (layout: ``rlmu.schema``) and
writes ``STUDY_DIR/aggregate/``:

- ``runs.parquet`` / ``runs.csv``: one row per epoch of every readable run: task, variant, seed, status,
  included, every ``progress.csv`` column, and ``normalised_return`` (``rlmu.tasks`` normalisation).
- ``run_status.csv``: one row per run directory: status, epochs done/total, final return, converged,
  category (``included`` / ``in_progress`` / ``excluded``) and the reason.
- ``manifest.json``: the input fingerprint and the warnings, so later steps know when they are stale.

Which runs enter the final statistics (the report repeats these rules):

- ``completed`` with every epoch of ``epochs_total`` in progress.csv: included.
- ``diverged``: included. Divergence is an outcome of the method, not an accident of the cluster, and it
  is counted one way everywhere: as a failure. The run is *not converged*, its final score is the task's
  minimum (normalised 0) in every statistic (IQM, mean, probability of improvement, profiles, claims),
  and its learning curve is its recorded evaluations up to the divergence and the minimum after them.
  Its last finite evaluation return is kept in ``last_finite_return`` for the reader. A run that
  diverged before its first evaluation (no rows) is included the same way, not dropped.
- ``running`` / ``preempted``, or ``completed`` with epochs missing: in progress, excluded from the
  statistics and from the figures (a partial curve would bias the late part of an IQM curve towards the
  seeds that happen to run fastest). Their epochs stay in ``runs.csv`` with ``included = False``.
- ``failed`` (the trainer crashed: a bug, out of memory, a lost node): excluded, with the error message.
- Unreadable inputs (missing or invalid run.json, a progress.csv that is truncated, has the wrong columns,
  non-numeric cells or missing values where values are required, epochs out of order, a run.json that
  disagrees with its directory, a file that is a directory): excluded, reported by path with the reason.
- Two directories holding the same seed (``seed_1`` beside ``seed_01``): both excluded, each naming the
  other; counting the seed twice would bias every statistic, and neither is more likely the right one.

Keys of run.json other than the ones read here (e.g. ``pack``, the seeds trained together) are ignored.
``input_fingerprint`` covers every input this module reads, so a new (even empty) run directory or a
changed ``timing.csv`` makes an existing aggregate stale.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rlmu import schema
from rlmu.errors import StudyError
from rlmu.tasks import get_task
from rlmu.utils.io import atomic_open, atomic_write_json, atomic_write_text

AGGREGATE_DIR = "aggregate"
RUNS_PARQUET = "runs.parquet"
RUNS_CSV = "runs.csv"
RUN_STATUS_CSV = "run_status.csv"
MANIFEST = "manifest.json"

# Cells that must hold a finite number in every row; other columns may be empty (e.g. unused losses).
REQUIRED_VALUES: tuple[str, ...] = ("epoch", "env_steps", "eval_return_mean")
INCLUDED, IN_PROGRESS, EXCLUDED = "included", "in_progress", "excluded"
_SEED_DIR = re.compile(r"^seed_(\d+)$")


@dataclass
class RunStatus:
    """What aggregation concluded about one run directory."""

    task: str
    variant: str
    seed: int | None
    path: str  # run directory, relative to the study folder
    status: str = ""  # run.json status ("" when unreadable)
    epochs_done: int | None = None  # from run.json
    epochs_total: int | None = None  # from run.json
    epochs_in_csv: int = 0
    final_env_steps: float = math.nan
    final_return: float = math.nan  # the return the statistics use (a diverged run: the task's minimum)
    final_normalised: float = math.nan
    converged: bool | None = None
    category: str = EXCLUDED
    reason: str = ""
    git_revision: str = ""  # from run.json, for the report's provenance
    last_finite_return: float = math.nan  # last finite evaluation return recorded (informative only)


@dataclass
class Aggregation:
    runs: pd.DataFrame  # tidy epochs table (see module docstring)
    status: pd.DataFrame  # one row per run directory (RunStatus fields)
    warnings: list[str] = field(default_factory=list)  # human-readable, each names a path
    thresholds: dict[str, float] = field(
        default_factory=dict
    )  # convergence threshold per task (return units)


class _BadRun(Exception):
    """A run's files cannot be used; the message says why (the caller adds the path)."""


def _number(text: str, line: int, column: str) -> float:
    text = text.strip()
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise _BadRun(f"line {line}, column {column}: {text!r} is not a number") from None


TIMING_VALUES = [c for c in schema.TIMING_COLUMNS if c != "epoch"]


def merge_timing(progress: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, str | None]:
    """Add the throughput columns of ``timing.csv`` to a run's progress rows, matched by epoch.

    Timing is not part of a run's result: a missing or unreadable file leaves the columns empty and
    returns the problem as a message (shown as a warning) instead of excluding the run.
    """
    out = progress.copy()
    for col in TIMING_VALUES:
        out[col] = np.nan
    if not path.exists():
        return out, "missing" if len(progress) else None
    if not path.is_file():
        return out, "not a file"
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return out, f"unreadable ({(str(exc).splitlines() or [type(exc).__name__])[0]})"
    if not rows:
        return out, "unreadable (empty file)"
    header = [h.strip() for h in rows[0]]
    if header != list(schema.TIMING_COLUMNS):
        return out, f"columns {header}, expected {list(schema.TIMING_COLUMNS)}"
    by_epoch: dict[float, list[float]] = {}  # the last row of an epoch wins (a resumed run rewrites it)
    for i, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            return out, f"unreadable (line {i} has {len(row)} fields, expected {len(header)})"
        epoch, *values = (_float_or_nan(c) for c in row)
        if not math.isnan(epoch):
            by_epoch[epoch] = values
    missing = [math.nan] * len(TIMING_VALUES)
    matched = np.array([by_epoch.get(float(e), missing) for e in progress["epoch"]], dtype=float)
    for j, col in enumerate(TIMING_VALUES):
        out[col] = matched[:, j] if len(matched) else np.nan
    return out, None


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _read_bytes(path: Path, name: str) -> bytes:
    """The bytes of a run's file, or ``_BadRun`` saying why they cannot be had (missing, a directory, ...)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _BadRun(f"{name} is missing") from None
    except IsADirectoryError:
        raise _BadRun(f"{name} is a directory, not a file") from None
    except OSError as exc:
        raise _BadRun(f"{name} cannot be read ({exc.strerror or type(exc).__name__})") from None


def _numbers(cells: list[list[str]], header: list[str]) -> np.ndarray:
    """The data rows' cells as floats ``(rows, columns)``; an empty cell is NaN. All cells go through
    ``float`` in one pass; only when one fails is each cell read on its own, to name the first bad one
    by line and column."""
    if not cells:
        return np.empty((0, len(header)))
    flat = [c or "nan" for row in cells for c in row]
    try:
        return np.fromiter(map(float, flat), float, len(flat)).reshape(len(cells), len(header))
    except ValueError:
        return np.array(
            [[_number(c, i, header[j]) for j, c in enumerate(row)] for i, row in enumerate(cells, start=2)]
        )


def read_progress(path: Path, status: str = "") -> pd.DataFrame:
    """Parse and validate one progress.csv; raise ``_BadRun`` with a precise reason on any defect.

    A diverged run may end with rows whose evaluation return is not finite (the networks produced NaN);
    those trailing rows are dropped. Anywhere else a missing required value makes the file invalid.
    """
    raw = _read_bytes(path, schema.PROGRESS_FILE)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadRun(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise _BadRun("empty file (no header)")
    lines = text.split("\n")
    ends_mid_line = not text.endswith("\n")
    rows = list(csv.reader(lines[:-1] if not ends_mid_line else lines))
    header = [h.strip() for h in rows[0]]
    expected = list(schema.PROGRESS_COLUMNS)
    if header != expected:
        missing = [c for c in expected if c not in header]
        unexpected = [c for c in header if c not in expected]
        dupes = sorted({c for c in header if header.count(c) > 1})
        parts = []
        if missing:
            parts.append("missing columns " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected columns " + ", ".join(unexpected))
        if dupes:
            parts.append("duplicate columns " + ", ".join(dupes))
        if parts:
            raise _BadRun("schema mismatch: " + "; ".join(parts))
        # Same columns in another order: readable by name, so accept it.
    n = len(header)
    cells: list[list[str]] = []
    for i, row in enumerate(rows[1:], start=2):
        last = i == len(rows)
        if not row:
            if last:
                continue
            raise _BadRun(f"line {i} is empty")
        if len(row) != n:
            how = "file ends in the middle of it (half-written?)" if last and ends_mid_line else "malformed"
            raise _BadRun(f"line {i} has {len(row)} fields, expected {n}: {how}")
        cells.append(row)
    values = _numbers(cells, header)
    if ends_mid_line and len(values):
        # The last line has the right number of fields but no newline: the writer may have stopped inside
        # its last number, so its values cannot be trusted.
        raise _BadRun(f"line {len(rows)} is not terminated by a newline: file ends mid-line (half-written?)")
    df = (
        pd.DataFrame(values, columns=header)[expected]
        if len(values)
        else pd.DataFrame(columns=expected, dtype=float)
    )
    ret = df["eval_return_mean"].to_numpy()
    if status == "diverged" and len(df):
        finite = np.isfinite(ret)
        if finite.any():
            df = df.iloc[: int(np.flatnonzero(finite)[-1]) + 1]
    for col in REQUIRED_VALUES:
        bad = ~np.isfinite(df[col].to_numpy(dtype=float))
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            raise _BadRun(
                f"line {line}: no finite value in required column {col} ({int(bad.sum())} such rows)"
            )
    epochs = df["epoch"].to_numpy()
    if len(df) and (np.any(epochs != np.round(epochs)) or np.any(np.diff(epochs) <= 0)):
        raise _BadRun("epochs are not strictly increasing integers")
    if len(df) and np.any(np.diff(df["env_steps"].to_numpy()) < 0):
        raise _BadRun("env_steps decrease")
    return df.reset_index(drop=True)


def read_run_record(path: Path) -> dict:
    """Load and validate run.json; raise ``_BadRun`` naming the problem. Unknown keys are ignored."""
    try:
        text = _read_bytes(path, schema.RUN_RECORD_FILE).decode("utf-8")
    except UnicodeDecodeError:
        raise _BadRun(f"{schema.RUN_RECORD_FILE} is not UTF-8 text") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _BadRun(f"{schema.RUN_RECORD_FILE} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(record, dict):
        raise _BadRun(f"{schema.RUN_RECORD_FILE} is not a JSON object")
    missing = [k for k in ("status", "epochs_done", "epochs_total") if k not in record]
    if missing:
        raise _BadRun(f"{schema.RUN_RECORD_FILE} lacks key(s) {', '.join(missing)}")
    if record["status"] not in schema.RUN_STATUSES:
        raise _BadRun(
            f"{schema.RUN_RECORD_FILE}: status {record['status']!r} is not one of {', '.join(schema.RUN_STATUSES)}"
        )
    for key in ("epochs_done", "epochs_total"):
        value = record[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _BadRun(f"{schema.RUN_RECORD_FILE}: {key} must be a non-negative integer, got {value!r}")
    return record


def _run_dirs(study_dir: Path, warnings: list[str]):
    """(task, variant, seed, run_dir, duplicate_of) for every seed directory; warn about stray folders.

    ``duplicate_of``: the other directories of the same task and variant that hold the same seed
    (``seed_1`` and ``seed_01``), empty for a seed held once.
    """
    runs_root = study_dir / "runs"
    found = []
    for task_dir in sorted(p for p in runs_root.iterdir() if p.is_dir()):
        for variant_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            for run_dir in sorted(p for p in variant_dir.iterdir() if p.is_dir()):
                m = _SEED_DIR.match(run_dir.name)
                if not m:
                    warnings.append(f"{run_dir.relative_to(study_dir)}: ignored, not a seed_<n> directory")
                    continue
                found.append((task_dir.name, variant_dir.name, int(m.group(1)), run_dir))
    by_seed: dict[tuple[str, str, int], list[Path]] = {}
    for task, variant, seed, run_dir in found:
        by_seed.setdefault((task, variant, seed), []).append(run_dir)
    for task, variant, seed, run_dir in found:
        others = [d for d in by_seed[(task, variant, seed)] if d != run_dir]
        yield task, variant, seed, run_dir, others


FINGERPRINTED_FILES = (schema.PROGRESS_FILE, schema.RUN_RECORD_FILE, schema.TIMING_FILE)


def input_fingerprint(study_dir: Path) -> str:
    """Hash of everything aggregation reads: the names of every entry of ``runs/`` down to the seed
    directories (so a new, empty or checkpoint-only run directory counts), and the type, size and
    modification time of each run's progress.csv, run.json and timing.csv (present or not)."""
    h = hashlib.sha256()
    runs_root = Path(study_dir) / "runs"
    if not runs_root.is_dir():
        return h.hexdigest()
    level = [runs_root]
    for _ in range(3):  # tasks, variants, seed directories
        nxt = []
        for d in level:
            try:
                entries = sorted(d.iterdir())
            except OSError:
                continue
            for e in entries:
                is_dir = e.is_dir()
                h.update(f"{e.relative_to(study_dir)}\0{'d' if is_dir else 'f'}\n".encode())
                if is_dir:
                    nxt.append(e)
        level = nxt
    for run_dir in level:  # runs/{task}/{variant}/{seed dir}
        for name in FINGERPRINTED_FILES:
            path = run_dir / name
            try:
                st = path.stat()
                kind = "d" if path.is_dir() else "f"
                h.update(f"{path.relative_to(study_dir)}\0{kind}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{path.relative_to(study_dir)}\0absent\n".encode())
    return h.hexdigest()


def aggregate_study(
    study_dir: str | Path, converge_thresholds: dict[str, float] | None = None
) -> Aggregation:
    """Read every run of a study; never raises for a bad run (it is excluded with a reason).

    ``converge_thresholds``: return threshold per task short name, overriding ``rlmu.tasks``' defaults
    (a run converges when its final evaluation return is strictly above the threshold).
    """
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise StudyError(f"study folder {study_dir} does not exist")
    if not (study_dir / "runs").is_dir():
        raise StudyError(
            f"{study_dir} has no runs/ folder: not a study folder (expected runs/{{task}}/{{variant}}/seed_{{n}}/)"
        )
    overrides = dict(converge_thresholds or {})
    warnings: list[str] = []
    statuses: list[RunStatus] = []
    frames: list[pd.DataFrame] = []
    ids: list[tuple] = []  # (rows, task, variant, seed, status, included) of each frame
    thresholds: dict[str, float] = {}
    bad_tasks: set[str] = set()
    for task, variant, seed, run_dir, duplicates in _run_dirs(study_dir, warnings):
        rel = str(run_dir.relative_to(study_dir))
        st = RunStatus(task=task, variant=variant, seed=seed, path=rel)
        statuses.append(st)
        if duplicates:
            names = ", ".join(str(d.relative_to(study_dir)) for d in duplicates)
            st.reason = (
                f"seed {seed} is also held by {names}: a seed may be counted once; rename or remove one"
            )
            warnings.append(f"{rel}: {st.reason}; run excluded")
            continue
        try:
            spec = get_task(task)
        except ValueError as exc:
            st.reason = f"unknown task folder {task!r}: {exc}"
            if task not in bad_tasks:
                warnings.append(f"runs/{task}: {st.reason}")
                bad_tasks.add(task)
            continue
        thresholds[task] = float(overrides.get(task, spec.converge_threshold))
        try:
            record = read_run_record(run_dir / schema.RUN_RECORD_FILE)
            st.status = record["status"]
            st.epochs_done, st.epochs_total = record["epochs_done"], record["epochs_total"]
            st.git_revision = str(record.get("git_revision") or "")
            for key, expected in (("task", task), ("variant", variant), ("seed", seed)):
                if (
                    key in record
                    and record[key] is not None
                    and record[key] != expected
                    and not (key == "task" and record[key] == spec.env_id)
                ):
                    raise _BadRun(
                        f"{schema.RUN_RECORD_FILE} says {key} {record[key]!r}, the directory says {expected!r}"
                    )
            df = read_progress(run_dir / schema.PROGRESS_FILE, st.status)
            df, timing_problem = merge_timing(df, run_dir / schema.TIMING_FILE)
            if timing_problem:
                warnings.append(f"{rel}/{schema.TIMING_FILE}: {timing_problem}; throughput left empty")
        except _BadRun as exc:
            st.reason = str(exc)
            name = schema.PROGRESS_FILE if schema.RUN_RECORD_FILE not in str(exc) else schema.RUN_RECORD_FILE
            warnings.append(f"{rel}/{name}: {exc}; run excluded")
            continue
        st.epochs_in_csv = len(df)
        if len(df):
            st.final_env_steps = float(df["env_steps"].iloc[-1])
            st.final_return = st.last_finite_return = float(df["eval_return_mean"].iloc[-1])
            st.final_normalised = float(spec.normalise(st.final_return))
        if st.status in ("running", "preempted"):
            st.category = IN_PROGRESS
            st.reason = f"{st.status}: {st.epochs_in_csv} of {st.epochs_total} epochs"
        elif st.status == "failed":
            st.reason = "failed: " + str(record.get("error") or "no error message recorded")
            warnings.append(f"{rel}: run failed ({record.get('error') or 'no error message'}); run excluded")
        elif st.epochs_in_csv == 0 and st.status != "diverged":
            st.reason = f"{st.status} but {schema.PROGRESS_FILE} has no epochs"
            warnings.append(f"{rel}/{schema.PROGRESS_FILE}: {st.reason}; run excluded")
        elif st.status == "completed" and st.epochs_in_csv < st.epochs_total:
            st.category = IN_PROGRESS
            st.reason = f"completed, but {schema.PROGRESS_FILE} has only {st.epochs_in_csv} of {st.epochs_total} epochs"
            warnings.append(f"{rel}/{schema.PROGRESS_FILE}: {st.reason}; treated as in progress")
        else:
            st.category = INCLUDED
            if st.status == "diverged":
                # A failure, counted one way everywhere (module docstring): not converged, minimum score.
                st.converged = False
                st.final_return = float(spec.min_return)
                st.final_normalised = float(spec.normalise(spec.min_return))
                st.reason = (
                    f"diverged after {st.epochs_in_csv} epochs ({record.get('error') or 'no message'}): "
                    "counted as a failure (not converged, the task's minimum score)"
                )
            else:
                st.converged = bool(st.final_return > thresholds[task])
        if len(df):
            df["normalised_return"] = spec.normalise(df["eval_return_mean"].to_numpy(dtype=float))
            frames.append(df)
            ids.append((len(df), task, variant, seed, st.status, st.category == INCLUDED))
    status_df = pd.DataFrame([asdict(s) for s in statuses], columns=list(RunStatus.__dataclass_fields__))
    id_cols = ["task", "variant", "seed", "status", "included"]
    if frames:
        runs = pd.concat(frames, ignore_index=True)
        # the identity columns once for all runs, not inserted into every run's frame
        lengths = [k[0] for k in ids]
        for j, col in reversed(list(enumerate(id_cols, start=1))):
            runs.insert(0, col, np.repeat(np.array([k[j] for k in ids], dtype=object), lengths))
    else:
        runs = pd.DataFrame(
            columns=id_cols + list(schema.PROGRESS_COLUMNS) + TIMING_VALUES + ["normalised_return"]
        )
    runs = runs.astype({"task": str, "variant": str, "seed": "int64", "status": str, "included": bool})
    for col in ("epoch", "env_steps", "updates"):
        if runs[col].notna().all():
            runs[col] = runs[col].astype("int64")
    # Runs of one (task, variant) that end at different step counts are compared at their own end.
    inc = status_df[status_df["category"] == INCLUDED]
    for (task, variant), g in inc[inc["status"] == "completed"].groupby(["task", "variant"]):
        ends = g["final_env_steps"]
        if ends.nunique() > 1:
            warnings.append(
                f"runs/{task}/{variant}: completed runs end at different env_steps ({int(ends.min())} to "
                f"{int(ends.max())}); final returns are taken at each run's end, curves are aligned on env_steps"
            )
    if not statuses:
        warnings.append(f"{study_dir / 'runs'}: no run directories found")
    return Aggregation(runs=runs, status=status_df, warnings=warnings, thresholds=thresholds)


def _write_csv(df: pd.DataFrame, f) -> None:
    """``df`` as CSV through pyarrow, ten times faster than pandas on a study's hundreds of thousands of
    epoch rows. Floats round-trip as with pandas (integral floats are written ``1`` rather than ``1.0``);
    booleans as ``True`` / ``False``."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    arrow = df.assign(**{c: np.where(df[c], "True", "False") for c in df.columns if df[c].dtype == bool})
    buf = io.BytesIO()
    try:
        options = pa_csv.WriteOptions(quoting_style="none", quoting_header="none")
        pa_csv.write_csv(pa.Table.from_pandas(arrow, preserve_index=False), buf, options)
    except pa.ArrowInvalid:  # a name that needs quoting (a comma in a directory name): pandas quotes it
        buf = io.BytesIO(df.to_csv(index=False, lineterminator="\n").encode())
    f.write(buf.getvalue())


def write_aggregation(study_dir: str | Path, agg: Aggregation, fingerprint: str | None = None) -> Path:
    """Write the aggregate/ folder atomically; returns its path."""
    out = Path(study_dir) / AGGREGATE_DIR
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / RUNS_PARQUET, "wb") as f:
        agg.runs.to_parquet(f, index=False)
    with atomic_open(out / RUNS_CSV, "wb") as f:
        _write_csv(agg.runs, f)
    atomic_write_text(out / RUN_STATUS_CSV, agg.status.to_csv(index=False, lineterminator="\n"))
    atomic_write_json(
        out / MANIFEST,
        {
            "fingerprint": fingerprint if fingerprint is not None else input_fingerprint(Path(study_dir)),
            "warnings": agg.warnings,
            "thresholds": agg.thresholds,
        },
    )
    return out


def load_aggregation(study_dir: str | Path) -> Aggregation:
    """Read back what ``write_aggregation`` wrote."""
    out = Path(study_dir) / AGGREGATE_DIR
    try:
        runs = pd.read_parquet(out / RUNS_PARQUET)
        status = pd.read_csv(out / RUN_STATUS_CSV, keep_default_na=False, na_values=[""])
        manifest = json.loads((out / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise StudyError(f"{exc.filename} is missing: run `rlmu aggregate {study_dir}` first") from None
    status["seed"] = status["seed"].astype("Int64")
    status["converged"] = status["converged"].map({True: True, False: False, "True": True, "False": False})
    status["reason"] = status["reason"].fillna("")
    status["status"] = status["status"].fillna("")
    status["git_revision"] = status["git_revision"].fillna("").astype(str)
    return Aggregation(
        runs=runs,
        status=status,
        warnings=list(manifest.get("warnings", [])),
        thresholds={k: float(v) for k, v in manifest.get("thresholds", {}).items()},
    )
