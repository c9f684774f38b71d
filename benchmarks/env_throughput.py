"""VisualPush environment throughput: physics only vs Meta-World's render path vs the project's renderer.

Usage::

    python benchmarks/env_throughput.py [--sizes 48 64 84] [--steps 200]

Every cell runs in a fresh interpreter, so no GL context (and no Meta-World viewer, which does not make its
context current on each call) is shared between cells. Each cell times ``--steps`` environment steps with
seeded uniform-random actions after a short warm-up; resets are not timed.

(a) physics:   Meta-World's step with our 2-D action mapping, no image.
(b) metaworld: Meta-World's own ``render()`` with ``render_mode="rgb_array"``, camera ``corner4``, at the
               same size, called after every step (what a user gets by default).
(c) rlmu:      ``gymnasium.make("rlmu/VisualPush-v0", image_size=size)``.step (FastRenderer).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

WARMUP = 5


def _time_steps(step, reset, steps: int, episode: int = 100) -> float:
    """Steps per second of ``step()`` over ``steps`` calls, resetting (untimed) every ``episode`` steps."""
    reset()
    for _ in range(WARMUP):
        step()
    elapsed, done = 0.0, 0
    while done < steps:
        n = min(episode, steps - done)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        elapsed += time.perf_counter() - t0
        done += n
        reset()
    return steps / elapsed


def run_cell(mode: str, size: int, steps: int) -> float:
    import numpy as np

    import rlmu  # noqa: F401  (sets MUJOCO_GL, registers the tasks)

    rng = np.random.default_rng(0)
    if mode == "rlmu":
        import gymnasium as gym

        env = gym.make("rlmu/VisualPush-v0", image_size=size)

        def step():
            env.step(rng.uniform(-1, 1, 2).astype(np.float32))

        rate = _time_steps(step, lambda: env.reset(seed=0), steps)
        env.close()
        return rate

    from rlmu.envs.metaworld_tasks import VisualPushEnv

    if mode == "physics":
        env = VisualPushEnv(image_size=size)
        mw = env._mw

        def step():
            mw.step(env._to_metaworld_action(rng.uniform(-1, 1, 2)))

        def reset():
            # Same reset distribution as the task, without rendering the first frame.
            env._mw._last_rand_vec = env._reset_vector()
            env._mw.hand_init_pos = env._hand_init()
            env._after_reset(env._mw.reset()[0])

        env.reset(seed=0)
        rate = _time_steps(step, reset, steps)
        env.close()
        return rate

    if mode == "metaworld":
        from metaworld.envs.sawyer_push_v3 import SawyerPushEnvV3

        mw = SawyerPushEnvV3(render_mode="rgb_array", camera_name="corner4", width=size, height=size)
        mw._set_task_called, mw._freeze_rand_vec, mw.max_path_length = True, True, 10**9
        mw._last_rand_vec = np.array([0.0, 0.6, 0.02, 0.0, 0.8, 0.02])
        frames = []

        def step():
            mw.step(np.array([*rng.uniform(-1, 1, 2), 0.0, 1.0]))
            frame = mw.render()
            if len(frames) < 1:
                frames.append(frame)

        rate = _time_steps(step, mw.reset, steps)
        if frames[0].shape != (size, size, 3) or not frames[0].any():
            raise RuntimeError(f"Meta-World's renderer returned a bad frame: shape {frames[0].shape}")
        mw.close()
        return rate
    raise ValueError(f"unknown mode {mode!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 64, 84])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per cell")
    parser.add_argument("--cell", nargs=2, metavar=("MODE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], int(args.cell[1]), args.steps)))
        return 0

    def cell(mode: str, size: int) -> float:
        out = subprocess.run(
            [sys.executable, __file__, "--cell", mode, str(size), "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return float(out.strip().splitlines()[-1])

    print(f"VisualPush steps/s, {args.steps} timed steps per cell, one process per cell")
    print(f"{'size':>5} | {'(a) physics':>12} | {'(b) metaworld':>14} | {'(c) rlmu':>9} | {'(c)/(b)':>7}")
    print(f"{'-' * 5}-+-{'-' * 12}-+-{'-' * 14}-+-{'-' * 9}-+-{'-' * 7}")
    for size in args.sizes:
        a, b, c = cell("physics", size), cell("metaworld", size), cell("rlmu", size)
        print(f"{size:>5} | {a:>12.1f} | {b:>14.1f} | {c:>9.1f} | {c / b:>6.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
