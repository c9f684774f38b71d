"""``rlmu data generate|paired|augment|info``: make, augment and inspect observation-video datasets.

The file format is documented in ``docs/data_format.md``; every file is written atomically.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

from rlmu.data.vdg import JITTER_MODES
from rlmu.errors import UserError
from rlmu.tasks import DEFAULT_OBSERVATION_DOMAIN

_FORMAT_DOC = "File format: docs/data_format.md (a single .npz archive, read without pickle)."


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` only for options whose default is a real value (not None / a False flag)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.required:
            return action.help
        return super()._get_help_string(action)


def add_subcommands(subparsers) -> None:
    data = subparsers.add_parser(
        "data",
        help="generate, augment and inspect observation videos and paired data",
        description="Observation videos (frames only, no actions or rewards) and paired robot/human images. "
        + _FORMAT_DOC,
    )
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data.set_defaults(func=lambda args: _no_subcommand(data))

    fmt = _DefaultsFormatter
    g = sub.add_parser(
        "generate",
        formatter_class=fmt,
        help="roll out the scripted demonstrator and store its observation videos",
        description="Roll out the task's scripted demonstrator with observations rendered in an observation "
        "domain and store the frames per episode, with whether each video ends in a goal state. Whole "
        "episodes are kept: generation stops at the first episode that reaches --transitions (or after "
        "exactly --episodes episodes). Shows a progress bar on a terminal, log lines otherwise. "
        + _FORMAT_DOC,
    )
    g.add_argument("--task", required=True, help="task short name: push, drawer or acrobot")
    g.add_argument(
        "--domain",
        default=None,
        help="observation domain: an image style for image tasks (rlmu.envs.domains: robot, human, "
        "human_dark), a state domain for acrobot (rlmu.envs.state_domains: robot = the state itself, "
        f"human = a seeded fixed transform plus noise); default {DEFAULT_OBSERVATION_DOMAIN}",
    )
    g.add_argument("--transitions", type=int, default=20_000, help="minimum number of transitions to store")
    g.add_argument("--episodes", type=int, default=None, help="store exactly this many episodes instead")
    g.add_argument("--noise", type=float, default=0.0, help="demonstrator action-noise level (>= 0)")
    g.add_argument(
        "--quality",
        default=None,
        help="acrobot demonstrator quality: low, medium or high (mean returns about -99/-79/-63)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the demonstrator and of the episode resets")
    g.add_argument("--image-size", type=int, default=48, help="frame height and width in pixels")
    g.add_argument("--no-compress", action="store_true", help="store arrays uncompressed (bigger, faster)")
    g.add_argument("--out", required=True, type=Path, help="output file (.npz)")
    g.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "paired",
        formatter_class=fmt,
        help="render N demonstrator-visited states in both the robot and an observation domain",
        description="Roll out the (noisy) scripted demonstrator in the robot domain and render about "
        "--per-episode visited states per episode in both the 'robot' domain and --domain, until --n pairs "
        "are collected (image tasks only; used by RLV's paired loss). " + _FORMAT_DOC,
    )
    p.add_argument("--task", required=True, help="task short name: push or drawer")
    p.add_argument("--domain", default="human", help="observation-domain style of the 'human' images")
    p.add_argument("--n", type=int, default=200, help="number of paired states")
    p.add_argument("--noise", type=float, default=0.2, help="demonstrator action-noise level (>= 0)")
    p.add_argument("--per-episode", type=int, default=10, help="average number of states kept per episode")
    p.add_argument("--seed", type=int, default=0, help="seed of the rollouts and of the state sampling")
    p.add_argument("--image-size", type=int, default=48, help="image height and width in pixels")
    p.add_argument("--out", required=True, type=Path, help="output file (.npz)")
    p.set_defaults(func=cmd_paired)

    a = sub.add_parser(
        "augment",
        formatter_class=fmt,
        help="apply the Video Data Generator (reverse / negative jitter) to a video dataset",
        description="Write the augmented videos of the original videos in --in (the augmented ones only; "
        "the trainer combines them with the originals). reverse: each video with its frames reversed. "
        "jitter: copy frames [0, s) with s uniform in [--start-min, --start-max], then repeat the next --j "
        "frames forward and the same frames reversed until the original length. --ratio is the number of "
        "augmented videos per original video (0.5 = half). " + _FORMAT_DOC,
    )
    a.add_argument(
        "--in", dest="inp", metavar="PATH", required=True, type=Path, help="input observation-video file"
    )
    a.add_argument("--mode", required=True, choices=["reverse", "jitter"], help="augmentation")
    a.add_argument("--j", type=int, default=5, help="jitter segment length (frames)")
    a.add_argument("--ratio", type=float, default=1.0, help="augmented videos per original video")
    a.add_argument("--start-min", type=int, default=10, help="smallest jitter start frame")
    a.add_argument("--start-max", type=int, default=25, help="largest jitter start frame (inclusive)")
    a.add_argument(
        "--jitter-mode",
        choices=list(JITTER_MODES),
        default=JITTER_MODES[0],
        help="fixed: every cycle repeats the chunk [s, s+j); advancing: each cycle takes the next j frames",
    )
    a.add_argument("--seed", type=int, default=0, help="seed of the video choice and start frames")
    a.add_argument("--no-compress", action="store_true", help="store arrays uncompressed")
    a.add_argument("--out", required=True, type=Path, help="output file (.npz)")
    a.set_defaults(func=cmd_augment)

    i = sub.add_parser(
        "info",
        help="print a dataset's metadata and counts (validates the file)",
        description="Validate a video or paired-data file and print its metadata and counts. "
        "Exits with status 2 and one error line if the file is not a readable rlmu dataset.",
    )
    i.add_argument("path", type=Path, help="dataset file")
    i.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    i.set_defaults(func=cmd_info)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise UserError(message)


def _file_summary(path: Path, ds, seconds: float | None = None) -> str:
    size = path.stat().st_size / 2**20
    timing = f" in {seconds:.1f} s" if seconds is not None else ""
    if hasattr(ds, "n_episodes"):
        return (
            f"wrote {path}: {ds.n_episodes} episodes, {ds.n_transitions} transitions, {size:.1f} MiB{timing}"
        )
    return f"wrote {path}: {len(ds)} pairs, {size:.1f} MiB{timing}"


def cmd_generate(args) -> int:
    from rlmu.data.generate import generate_videos

    _check(args.transitions >= 1, f"--transitions must be >= 1, got {args.transitions}")
    _check(args.episodes is None or args.episodes >= 1, f"--episodes must be >= 1, got {args.episodes}")
    _check(args.noise >= 0, f"--noise must be >= 0, got {args.noise}")
    _check(args.image_size >= 8, f"--image-size must be >= 8, got {args.image_size}")
    t0 = time.monotonic()
    try:
        ds = generate_videos(
            args.task,
            domain=args.domain,
            n_transitions=args.transitions,
            n_episodes=args.episodes,
            noise=args.noise,
            quality=args.quality,
            seed=args.seed,
            image_size=args.image_size,
            progress=True,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    _save(args.out, ds, compress=not args.no_compress)
    print(
        _file_summary(args.out, ds, time.monotonic() - t0) + f", success rate {ds.meta['success_rate']:.2f}"
    )
    return 0


def cmd_paired(args) -> int:
    from rlmu.data.generate import generate_paired

    _check(args.n >= 1, f"--n must be >= 1, got {args.n}")
    _check(args.per_episode >= 1, f"--per-episode must be >= 1, got {args.per_episode}")
    _check(args.noise >= 0, f"--noise must be >= 0, got {args.noise}")
    _check(args.image_size >= 8, f"--image-size must be >= 8, got {args.image_size}")
    t0 = time.monotonic()
    try:
        ds = generate_paired(
            args.task,
            n=args.n,
            domain=args.domain,
            noise=args.noise,
            seed=args.seed,
            image_size=args.image_size,
            per_episode=args.per_episode,
            progress=True,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    _save(args.out, ds, compress=True)
    print(_file_summary(args.out, ds, time.monotonic() - t0))
    return 0


def cmd_augment(args) -> int:
    from rlmu.data.format import DatasetError, load_video_dataset
    from rlmu.data.generate import augment_dataset

    _check(args.j >= 1, f"--j must be >= 1, got {args.j}")
    _check(args.ratio > 0, f"--ratio must be > 0, got {args.ratio}")
    _check(
        0 <= args.start_min <= args.start_max,
        f"need 0 <= --start-min <= --start-max, got {args.start_min} and {args.start_max}",
    )
    try:
        src = load_video_dataset(args.inp)
    except DatasetError as exc:
        raise UserError(str(exc)) from None
    source = {"path": str(args.inp), "sha256": _sha256(args.inp), "n_episodes": src.n_episodes}
    try:
        ds = augment_dataset(
            src,
            args.mode,
            j=args.j,
            ratio=args.ratio,
            start_range=(args.start_min, args.start_max),
            jitter_mode=args.jitter_mode,
            seed=args.seed,
            source=source,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    _save(args.out, ds, compress=not args.no_compress)
    print(_file_summary(args.out, ds))
    return 0


def cmd_info(args) -> int:
    from rlmu.data.format import DatasetError, PairedDataset, load_dataset

    try:
        ds = load_dataset(args.path)
    except DatasetError as exc:
        raise UserError(str(exc)) from None
    summary: dict = {"path": str(args.path), "file_bytes": args.path.stat().st_size}
    if isinstance(ds, PairedDataset):
        summary.update(
            n_pairs=len(ds),
            image_shape=list(ds.robot.shape[1:]),
            state_dim=int(ds.state.shape[1]),
        )
    else:
        summary.update(
            n_episodes=ds.n_episodes,
            n_transitions=ds.n_transitions,
            n_frames=len(ds.frames),
            frame_shape=list(ds.frames.shape[1:]),
            frame_dtype=str(ds.frames.dtype),
            kinds=dict(Counter(ds.kind.tolist())),
            reached_goal=int(ds.reached_goal.sum()),
            episode_length_min=int(ds.episode_lengths.min()),
            episode_length_max=int(ds.episode_lengths.max()),
            reversed_transitions=int(ds.reversed_mask.sum()),
        )
    if args.json:
        print(json.dumps({"meta": ds.meta, "summary": summary}, indent=2, sort_keys=True))
        return 0
    print(f"{args.path}")
    print("metadata:")
    for key in sorted(ds.meta):
        print(f"  {key}: {json.dumps(ds.meta[key])}")
    print("counts:")
    for key, value in summary.items():
        if key != "path":
            print(f"  {key}: {value}")
    return 0


def _save(path: Path, ds, *, compress: bool) -> None:
    from rlmu.data.format import PairedDataset, save_paired_dataset, save_video_dataset

    try:
        if isinstance(ds, PairedDataset):
            save_paired_dataset(path, ds, compress=compress)
        else:
            save_video_dataset(path, ds, compress=compress)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


if __name__ == "__main__":  # pragma: no cover
    from rlmu.cli import main

    sys.exit(main(["data", *sys.argv[1:]]))
