"""``rlmu render``: save PNGs of a few states of an image task in one observation-domain style.

Example::

    rlmu render --task push --style human --size 48 --out renders/push_human

The task's scripted expert plays one seeded episode; frames at evenly spaced steps are written as
``{task}_{style}_step{NNN}.png`` (upscaled by ``--scale`` with nearest-neighbour so small frames are easy
to inspect), plus the same states in the ``robot`` style when ``--paired`` is given.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

IMAGE_TASKS = ("push", "drawer")


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("render", help="save PNGs of a few states of an image task in a domain style")
    p.add_argument("--task", required=True, help="image task short name: push or drawer")
    p.add_argument("--style", default="robot", help="domain style (robot, human, human_dark)")
    p.add_argument("--size", type=int, default=48, help="image size in pixels (default 48)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--frames", type=int, default=5, help="number of states to save (default 5)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    p.add_argument("--camera", default=None, help="camera name (default: the task's camera)")
    p.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscaling of saved PNGs")
    p.add_argument("--paired", action="store_true", help="also save each state in the robot style")
    p.set_defaults(func=run_render)


def _png_bytes(frame: np.ndarray, scale: int) -> bytes:
    import imageio.v3 as iio

    big = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    iio.imwrite(buf, big, extension=".png")
    return buf.getvalue()


def run_render(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from rlmu.envs.domains import STYLES
    from rlmu.errors import UserError
    from rlmu.experts import make_expert
    from rlmu.tasks import get_task
    from rlmu.utils.io import atomic_write_bytes

    if args.task not in IMAGE_TASKS:
        raise UserError(f"--task must be one of {', '.join(IMAGE_TASKS)} (image tasks), got {args.task!r}")
    if args.style not in STYLES:
        raise UserError(f"--style must be one of {', '.join(sorted(STYLES))}, got {args.style!r}")
    if not 8 <= args.size <= 480:
        raise UserError(f"--size must be in [8, 480], got {args.size}")
    if args.frames < 1 or args.scale < 1:
        raise UserError("--frames and --scale must be >= 1")
    spec = get_task(args.task)
    kwargs = {"image_size": args.size, "domain": args.style}
    if args.camera:
        kwargs["camera"] = args.camera
    try:
        env = gym.make(spec.env_id, **kwargs)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    expert = make_expert(args.task, noise=0.0, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    save_at = set(np.linspace(0, spec.episode_steps, args.frames).round().astype(int).tolist())
    written = []
    obs, info = env.reset(seed=args.seed)
    try:
        for t in range(spec.episode_steps + 1):
            if t in save_at:
                path = args.out / f"{args.task}_{args.style}_step{t:03d}.png"
                atomic_write_bytes(path, _png_bytes(obs, args.scale))
                written.append(path)
                if args.paired and args.style != "robot":
                    robot = env.unwrapped.render_domain("robot")
                    path = args.out / f"{args.task}_robot_step{t:03d}.png"
                    atomic_write_bytes(path, _png_bytes(robot, args.scale))
                    written.append(path)
            if t == spec.episode_steps:
                break
            obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
            if terminated or truncated:
                save_at.add(t + 1)  # always save the final state
    finally:
        env.close()
    for path in written:
        print(path)
    return 0
