"""The ``rlmu`` command line: one entry point, subcommands contributed by the package's modules.

Each module listed in ``SUBCOMMAND_MODULES`` exposes ``add_subcommands(subparsers)``, which adds its
parsers and sets ``func`` (called with the parsed namespace; returns an exit code).

Bad input (``UserError``, ``DatasetError``, ``CheckpointError`` from ``rlmu.errors``) that reaches
``main`` is printed as one ``rlmu: error: ...`` line, without a traceback, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rlmu.errors import CheckpointError, DatasetError, UserError

# Errors about the user's input: one line and exit status 2, never a traceback.
INPUT_ERRORS: tuple[type[Exception], ...] = (UserError, DatasetError, CheckpointError)
INPUT_ERROR_EXIT_CODE = 2

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "rlmu.envs.cli",  # rlmu render
    "rlmu.data.cli",  # rlmu data generate|info|augment|paired
    "rlmu.train.cli",  # rlmu train
    "rlmu.report.cli",  # rlmu aggregate|stats|report
    "rlmu.workflow",  # rlmu workflow (Snakemake, study files checked first)
)


def build_parser() -> argparse.ArgumentParser:
    from rlmu import __version__

    parser = argparse.ArgumentParser(
        prog="rlmu",
        description="Reproducibility harness for reinforcement learning from observation videos.",
    )
    parser.add_argument("--version", action="version", version=f"rlmu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["workflow"] and argv[1:2] not in (["-h"], ["--help"]):
        # Everything after `workflow` is Snakemake's (argparse cannot pass leading options through).
        args, extra = parser.parse_args(["workflow"]), []
        args.snakemake_args = argv[1:]
    else:
        args, extra = parser.parse_known_args(argv)
    # `key=value` overrides may come after options (`rlmu train --run-dir D seed=1 epochs=3`); argparse
    # only collects one run of positionals, so the rest are gathered here for commands that take them.
    if extra and hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.command != "train":  # `rlmu train` takes over the signals held while the package loaded
        import rlmu

        rlmu.release_held_signals()
    try:
        return int(args.func(args) or 0)
    except INPUT_ERRORS as exc:
        print(f"rlmu: error: {one_line(str(exc))}", file=sys.stderr)
        return INPUT_ERROR_EXIT_CODE


def one_line(message: str) -> str:
    """``message`` on one line: its lines joined with single spaces (a path or value may hold a newline)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip()) or "(no message)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
