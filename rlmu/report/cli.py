"""``rlmu aggregate|stats|report STUDY_DIR``.

``aggregate`` reads the runs into ``aggregate/``; ``stats`` computes the tables into ``stats/``;
``report`` brings whatever is missing or stale up to date (aggregate -> stats -> figures) and writes
``report.html`` and ``report.md``. Staleness is decided by fingerprints that cover every input a step
reads, not guesses: the aggregate records ``rlmu.report.aggregate.input_fingerprint`` (every entry of
``runs/`` down to the run directories, and the type, size and modification time of each run's
progress.csv, run.json and timing.csv), the convergence thresholds it was asked for and a hash of the
code that reads the runs; the statistics record that fingerprint, their parameters and a hash of the
statistics code; the figures record a hash of the statistics tables and of the plotting code. Anything
else (``--force``) recomputes every step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from rlmu.errors import UserError

CONFIG_NAMES = ("config.yaml", "study.yaml", "config.yml")
FIGURES_META = "meta.json"


def _study_dir(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UserError(f"study folder {p} does not exist")
    if not p.is_dir():
        raise UserError(
            f"{p} is not a folder (expected a study folder with runs/{{task}}/{{variant}}/seed_{{n}}/)"
        )
    if not (p / "runs").is_dir():
        raise UserError(
            f"{p} has no runs/ folder: not a study folder (expected runs/{{task}}/{{variant}}/seed_{{n}}/)"
        )
    return p


def _config_path(study_dir: Path, given: str | None) -> Path | None:
    if given:
        p = Path(given)
        if not p.is_file():
            raise UserError(f"--config {p}: no such file")
        return p
    for name in CONFIG_NAMES:
        if (study_dir / name).is_file():
            return study_dir / name
    return None


def _config_value(config: Path | None, key: str):
    """The top-level ``key`` of the study config YAML (None without a config or without that key)."""
    if config is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{config}: not valid YAML ({exc})") from None
    return data.get(key) if isinstance(data, dict) else None


def _thresholds(config: Path | None) -> dict[str, float]:
    """``converge_thresholds: {task: return}`` from the study config, if it has that key."""
    raw = _config_value(config, "converge_thresholds")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{config}: converge_thresholds must map task names to returns, got {raw!r}")
    out = {}
    for task, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{config}: converge_thresholds.{task} must be a number, got {value!r}")
        out[str(task)] = float(value)
    return out


def _config_min_seeds(config: Path | None) -> int | None:
    """``min_seeds: N`` from the study config (fewest seeds per group a claim verdict may rest on), if set."""
    value = _config_value(config, "min_seeds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{config}: min_seeds must be a positive integer, got {value!r}")
    return value


def code_hash(*modules: str) -> str:
    """Hash of the source files of ``modules`` (dotted names; a package counts every module in it), so a
    step's output is stale when the code that computes it changes."""
    import importlib

    h = hashlib.sha256()
    for name in modules:
        mod = importlib.import_module(name)
        files = (
            sorted(Path(mod.__file__).parent.glob("*.py"))
            if Path(mod.__file__).name == "__init__.py"
            else [Path(mod.__file__)]
        )
        for f in files:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


AGGREGATE_CODE = ("rlmu.report.aggregate", "rlmu.schema", "rlmu.tasks")
STATS_CODE = ("rlmu.report.tables", "rlmu.stats", "rlmu.tasks")
FIGURES_CODE = ("rlmu.report.figures",)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_aggregate(study_dir: Path, thresholds: dict[str, float], force: bool = False, quiet: bool = False):
    """Aggregate when missing or stale; returns the ``Aggregation`` (read back when up to date)."""
    from rlmu.report.aggregate import (
        AGGREGATE_DIR,
        MANIFEST,
        RUNS_PARQUET,
        StudyError,
        aggregate_study,
        input_fingerprint,
        load_aggregation,
        write_aggregation,
    )

    fp = input_fingerprint(study_dir)
    code = code_hash(*AGGREGATE_CODE)
    manifest = _read_json(study_dir / AGGREGATE_DIR / MANIFEST)
    try:
        if (
            not force
            and manifest
            and manifest.get("fingerprint") == fp
            and manifest.get("requested_thresholds", {}) == thresholds
            and manifest.get("code") == code
            and (study_dir / AGGREGATE_DIR / RUNS_PARQUET).is_file()
        ):
            agg = load_aggregation(study_dir)
            if not quiet:
                print(f"aggregate: up to date ({study_dir / AGGREGATE_DIR})")
            return agg, fp
        agg = aggregate_study(study_dir, thresholds)
    except StudyError as exc:
        raise UserError(str(exc)) from None
    write_aggregation(study_dir, agg, fp)
    # Remember which overrides produced these thresholds, so a changed config makes the aggregate stale.
    m = _read_json(study_dir / AGGREGATE_DIR / MANIFEST) or {}
    m["requested_thresholds"] = thresholds
    m["code"] = code
    from rlmu.utils.io import atomic_write_json

    atomic_write_json(study_dir / AGGREGATE_DIR / MANIFEST, m)
    st = agg.status
    counts = {c: int((st["category"] == c).sum()) for c in ("included", "in_progress", "excluded")}
    print(
        f"aggregate: {len(st)} runs ({counts['included']} included, {counts['in_progress']} in progress, "
        f"{counts['excluded']} excluded), {len(agg.runs)} epoch rows -> {study_dir / AGGREGATE_DIR}"
    )
    for w in agg.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return agg, fp


def run_stats(study_dir: Path, agg, fp: str, params, force: bool = False):
    from rlmu.report.tables import META, STATS_DIR, compute_stats, load_stats, write_stats

    meta = _read_json(study_dir / STATS_DIR / META)
    code = code_hash(*STATS_CODE)
    if (
        not force
        and meta
        and meta.get("fingerprint") == fp
        and meta.get("params") == asdict(params)
        and meta.get("code") == code
    ):
        try:
            tables, meta = load_stats(study_dir)
            print(f"stats: up to date ({study_dir / STATS_DIR})")
            return tables, meta["notes"]
        except (OSError, ValueError, KeyError):
            pass  # damaged: recompute
    t0 = time.perf_counter()
    result = compute_stats(agg, params)
    write_stats(study_dir, result, params, fp, code=code)
    print(
        f"stats: {sum(len(t) for t in result.tables.values())} rows in {len(result.tables)} tables, "
        f"{time.perf_counter() - t0:.1f} s -> {study_dir / STATS_DIR}"
    )
    for n in result.notes:
        print(f"note: {n}", file=sys.stderr)
    return result.tables, result.notes


def _stats_hash(study_dir: Path) -> str:
    from rlmu.report.tables import STATS_DIR, TABLES

    h = hashlib.sha256(code_hash(*FIGURES_CODE).encode())
    for name in TABLES:
        p = study_dir / STATS_DIR / f"{name}.csv"
        h.update(p.read_bytes() if p.is_file() else b"")
    return h.hexdigest()


def run_figures(study_dir: Path, tables, force: bool = False):
    from rlmu.report.figures import FIGURES_DIR, Figure, make_figures
    from rlmu.utils.io import atomic_write_json

    out = study_dir / FIGURES_DIR
    key = _stats_hash(study_dir)
    meta = _read_json(out / FIGURES_META)
    if not force and meta and meta.get("stats_hash") == key:
        figs = [Figure(**f) for f in meta.get("figures", [])]
        if all((out / f"{f.name}.png").is_file() for f in figs):
            print(f"figures: up to date ({out})")
            return figs
    figs = make_figures(tables, out)
    atomic_write_json(out / FIGURES_META, {"stats_hash": key, "figures": [asdict(f) for f in figs]})
    print(f"figures: {len(figs)} PNG files -> {out}")
    return figs


def _params(args, config: Path | None = None):
    from rlmu.report.tables import StatsParams

    # --min-seeds on the command line wins over the study config's min_seeds, which wins over the default.
    min_seeds = args.min_seeds if args.min_seeds is not None else _config_min_seeds(config)
    extra = {} if min_seeds is None else {"min_seeds": min_seeds}
    params = StatsParams(seed=args.seed, reps=args.reps, curve_reps=args.curve_reps, **extra)
    try:
        params.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return params


def cmd_aggregate(args) -> int:
    study_dir = _study_dir(args.study_dir)
    run_aggregate(study_dir, _thresholds(_config_path(study_dir, args.config)), force=True)
    return 0


def cmd_stats(args) -> int:
    study_dir = _study_dir(args.study_dir)
    config = _config_path(study_dir, args.config)
    params = _params(args, config)
    agg, fp = run_aggregate(study_dir, _thresholds(config))
    run_stats(study_dir, agg, fp, params, force=True)
    return 0


def cmd_report(args) -> int:
    from rlmu.report.html import render_report

    study_dir = _study_dir(args.study_dir)
    config = _config_path(study_dir, args.config)
    params = _params(args, config)
    agg, fp = run_aggregate(study_dir, _thresholds(config), force=args.force)
    tables, notes = run_stats(study_dir, agg, fp, params, force=args.force)
    figs = run_figures(study_dir, tables, force=args.force)
    check = _reference_check(study_dir, agg, args.reference, params) if args.reference else None
    html_path, md_path = render_report(
        study_dir, agg, tables, figs, notes=notes, params=asdict(params), config_path=config, reference=check
    )
    print(f"report: {html_path} ({html_path.stat().st_size / 1e6:.1f} MB), {md_path}")
    if check is not None:
        t = check.table
        print(
            f"reference {check.reference}: {int((t['verdict'] == 'agree').sum())} agree, "
            f"{int((t['verdict'] == 'disagree').sum())} disagree, "
            f"{int((t['verdict'] == 'not compared').sum())} not compared"
            + "".join(
                f"; disagrees: {r.task}/{r.variant} {r.metric}" for r in check.disagreements.itertuples()
            )
        )
    return 0


def _reference_check(study_dir: Path, agg, reference: str, params):
    """Compare the study with the reference study folder ``reference`` (aggregated in memory, unchanged)."""
    from rlmu.report.aggregate import StudyError, aggregate_study
    from rlmu.report.reference import reference_check

    ref_dir = _study_dir(reference)
    if ref_dir.resolve() == study_dir.resolve():
        raise UserError(f"--reference {reference}: is the study itself")
    try:
        ref_agg = aggregate_study(ref_dir, _thresholds(_config_path(ref_dir, None)))
    except StudyError as exc:
        raise UserError(f"--reference {reference}: {exc}") from None
    return reference_check(study_dir, agg, ref_dir, ref_agg, reps=min(params.reps, 10_000), seed=params.seed)


def add_subcommands(subparsers) -> None:
    def common(p, stats: bool):
        p.add_argument(
            "study_dir", metavar="STUDY_DIR", help="study folder holding runs/{task}/{variant}/seed_{n}/"
        )
        p.add_argument(
            "--config",
            metavar="FILE",
            help="study configuration (embedded in the report; its converge_thresholds: {task: return} "
            "override the task defaults, its min_seeds: N sets the claims' seed floor); default: "
            "STUDY_DIR/config.yaml if present",
        )
        if stats:
            p.add_argument(
                "--seed", type=int, default=0, help="bootstrap seed (default 0): same seed, same tables"
            )
            p.add_argument(
                "--reps",
                type=int,
                default=50_000,
                help="bootstrap repetitions for aggregate metrics and probability of improvement (default 50000)",
            )
            p.add_argument(
                "--curve-reps",
                type=int,
                default=2_000,
                help="bootstrap repetitions for IQM curves and performance profiles (default 2000)",
            )
            p.add_argument(
                "--min-seeds",
                type=int,
                default=None,
                help="fewest seeds per compared group for a claim to be judged supported or contradicted; "
                "below it the claim is inconclusive (default: the study config's min_seeds, else "
                "rlmu.stats.claims.DEFAULT_MIN_SEEDS; docs/statistics.md)",
            )

    p = subparsers.add_parser(
        "aggregate",
        help="collect a study's runs into aggregate/ (tidy tables)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    common(p, stats=False)
    p.set_defaults(func=cmd_aggregate)
    p = subparsers.add_parser("stats", help="compute the statistics tables into stats/ (CSV + Markdown)")
    common(p, stats=True)
    p.set_defaults(func=cmd_stats)
    p = subparsers.add_parser(
        "report", help="bring aggregate, stats and figures up to date; write report.html"
    )
    common(p, stats=True)
    p.add_argument("--force", action="store_true", help="recompute every step even if up to date")
    p.add_argument(
        "--reference",
        metavar="REF_DIR",
        help="a reference study folder (e.g. results/reference/acrobot): the report puts its curves and "
        "intervals beside this study's and says, per variant and metric, whether the two agree "
        "(rlmu.report.reference; written to STUDY_DIR/reference/)",
    )
    p.set_defaults(func=cmd_report)
