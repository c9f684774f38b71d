"""``rlmu workflow [SNAKEMAKE ARGS...]``: run the study workflow, its study files checked first.

Snakemake reads ``--configfile`` itself, before any of the workflow's code runs, and a file it cannot
read (not UTF-8, a directory) ends in a traceback of its own; a YAML error, an empty file or a top-level
list ends in a line that names neither the file nor the line. This command reads every study file the
run would use (each ``--configfile`` / ``--configfiles`` argument, else the ``configfile:`` of the
``--profile``) with the workflow's own reader and checks (``workflow/scripts/study.py``), so such a file
stops with one line naming the file (and line), then replaces itself with the Snakemake installed next to
this Python, with the arguments unchanged::

    rlmu workflow --profile profiles/local --configfile config/quick.yaml
    rlmu workflow --profile slurm -n
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from rlmu.errors import UserError

PROFILE_HOMES = (Path.home() / ".config" / "snakemake", Path("/etc/xdg/snakemake"))
STUDY_SCRIPT = Path("workflow") / "scripts" / "study.py"


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "workflow",
        help="run the study workflow (Snakemake) after checking its study files",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="arguments passed to snakemake unchanged")
    p.set_defaults(func=_run)


def _option_values(args: list[str], *names: str) -> list[str] | None:
    """The values of options ``names`` in a Snakemake argument list (``--x V``, ``--x=V``, ``--x V W ...``
    for the list-valued ``--configfile(s)``), or None when none is given."""
    found: list[str] | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in names:
            found = [] if found is None else found
            if eq:
                found.append(value)
            else:
                i += 1
                while i < len(args) and not args[i].startswith("-"):
                    found.append(args[i])
                    i += 1
                continue
        i += 1
    return found


def _profile_config(name: str) -> tuple[Path, dict[str, Any]] | None:
    """The ``config.yaml`` of profile ``name`` (a path, or a name looked up as Snakemake looks it up)."""
    candidates = [Path(name)] if os.sep in name or Path(name).is_dir() else []
    candidates += [home / name for home in PROFILE_HOMES]
    for directory in candidates:
        path = directory / "config.yaml"
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                raise UserError(f"{path}: cannot read the profile: {exc}") from None
            return path, data if isinstance(data, dict) else {}
    return None


def study_files(args: list[str]) -> list[str]:
    """The study files a Snakemake run with ``args`` would read."""
    given = _option_values(args, "--configfile", "--configfiles")
    if given is not None:
        if not given:
            raise UserError("--configfile needs a study file (e.g. config/quick.yaml)")
        return given
    profiles = _option_values(args, "--profile")
    if profiles:
        found = _profile_config(profiles[-1])
        if found is not None:
            value = found[1].get("configfile", found[1].get("configfiles"))
            if isinstance(value, str):
                return [value]
            if isinstance(value, list):
                return [str(v) for v in value]
    return []


def _study_module(root: Path):
    spec = importlib.util.spec_from_file_location("rlmu_workflow_study", root / STUDY_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def check_study_files(args: list[str]) -> None:
    """Read and check every study file of ``args`` with the workflow's rules; UserError naming the file."""
    root = Path.cwd()
    if not (root / STUDY_SCRIPT).is_file():
        raise UserError(
            f"{root}: not the rlmu repository (no {STUDY_SCRIPT}); run rlmu workflow from its root"
        )
    study = _study_module(root)
    for name in study_files(args):  # relative to here, as Snakemake reads them
        try:
            study.check_study(study.read_study_file(name), name)
        except study.PlanError as exc:
            raise UserError(f"study config error: {exc}") from None


def snakemake_executable() -> str:
    """The Snakemake next to this Python (the environment rlmu is installed in), else the one on PATH."""
    local = Path(sys.executable).parent / "snakemake"
    if local.is_file():
        return str(local)
    found = shutil.which("snakemake")
    if found is None:
        raise UserError("snakemake is not installed next to this Python or on PATH (bash scripts/setup.sh)")
    return found


def _run(ns: argparse.Namespace) -> int:
    args = list(ns.snakemake_args)
    if args[:1] == ["--"]:
        args = args[1:]
    check_study_files(args)
    exe = snakemake_executable()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, [exe, *args])
    return 0  # pragma: no cover (execv does not return)
