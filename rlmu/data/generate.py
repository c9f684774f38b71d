"""Generate observation videos and paired data with the scripted demonstrators (METHODS section 2).

Pure functions that return in-memory datasets (:class:`~rlmu.data.format.VideoDataset`,
:class:`~rlmu.data.format.PairedDataset`); writing them is the caller's job (``rlmu data`` does it
atomically). Everything is seeded: the same arguments give the same frames.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from rlmu.data.format import KINDS, PairedDataset, VideoDataset
from rlmu.envs.rollout import rollout
from rlmu.tasks import DEFAULT_OBSERVATION_DOMAIN, TaskSpec, get_task

DEFAULT_PAIRED_NOISE = 0.2  # our choice: noisy rollouts visit off-demonstration states too


class Progress:
    """Progress over ``total`` units: a tqdm bar on a terminal, plain log lines on stderr otherwise.

    ``enabled=False`` makes it silent (library use, tests).
    """

    def __init__(self, total: int, desc: str, unit: str, enabled: bool = True) -> None:
        self.total, self.desc, self.unit, self.n = int(total), desc, unit, 0
        self._bar = None
        self._enabled = enabled
        self._next_log = 0.1
        self._t0 = time.monotonic()
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=sys.stderr)

    def update(self, k: int) -> None:
        self.n += k
        if self._bar is not None:
            self._bar.update(k)
        elif self._enabled and self.total > 0 and self.n / self.total >= self._next_log:
            # One line per 10% so that logs of batch jobs stay short.
            frac = min(self.n / self.total, 1.0)
            dt = time.monotonic() - self._t0
            print(f"{self.desc}: {self.n}/{self.total} {self.unit} ({frac:.0%}, {dt:.1f} s)", file=sys.stderr)
            while self._next_log <= frac:
                self._next_log += 0.1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def available_domains(spec: TaskSpec | None = None) -> list[str]:
    """Observation-domain names: image styles (``rlmu.envs.domains``) for image tasks (the default),
    state domains (``rlmu.envs.state_domains``) for state tasks."""
    if spec is not None and not spec.pixels:
        from rlmu.envs.state_domains import STATE_DOMAINS

        return sorted(STATE_DOMAINS)
    from rlmu.envs.domains import STYLES

    return sorted(STYLES)


def resolve_domain(spec: TaskSpec, domain: str | None) -> str:
    """The observation domain for ``spec``: ``domain``, or :data:`DEFAULT_OBSERVATION_DOMAIN` when None;
    unknown names raise a ValueError listing the task's domains."""
    domain = DEFAULT_OBSERVATION_DOMAIN if domain is None else domain
    choices = available_domains(spec)
    if domain not in choices:
        kind = "image" if spec.pixels else "state"
        raise ValueError(
            f"unknown domain {domain!r} for task {spec.name!r} ({kind} observations); choose one of {choices}"
        )
    return domain


def make_env(spec: TaskSpec, domain: str, image_size: int):
    import gymnasium as gym

    import rlmu  # noqa: F401  (registers the tasks)

    if spec.pixels:
        return gym.make(spec.env_id, image_size=image_size, domain=domain)
    return gym.make(spec.env_id, domain=domain)


def make_demonstrator(spec: TaskSpec, *, noise: float, seed: int, quality: str | None):
    """The scripted expert of ``spec``; ``quality`` applies to Acrobot only."""
    from rlmu.experts import make_expert

    kwargs: dict[str, Any] = {}
    if quality is not None:
        if spec.name != "acrobot":
            raise ValueError(f"quality applies to the acrobot demonstrator only, not to task {spec.name!r}")
        from rlmu.experts.acrobot import ACROBOT_QUALITIES

        if quality not in ACROBOT_QUALITIES:
            raise ValueError(
                f"unknown acrobot quality {quality!r}; choose one of {sorted(ACROBOT_QUALITIES)}"
            )
        kwargs["quality"] = quality
    return make_expert(spec.name, noise=noise, seed=seed, **kwargs)


def _demonstrator_name(expert) -> str:
    cls = type(expert)
    return f"{cls.__module__}.{cls.__qualname__}"


def rollout_episode(env, expert, *, seed: int) -> tuple[np.ndarray, bool, bool]:
    """Run one demonstrator episode. Returns ``(frames (T + 1, ...), reached_goal, success_any_step)``.

    ``reached_goal`` is ``info["success"]`` at the final frame (the video ends in a goal state);
    ``success_any_step`` is ``info["success"]`` on some step (the task definition of success). Reward
    relabelling rewards one of the two (``data.success``).
    """
    ep = rollout(env, expert, seed)
    return ep.frames, ep.final_success, ep.success


def generate_videos(
    task: str,
    *,
    domain: str | None = None,
    n_transitions: int = 20_000,
    n_episodes: int | None = None,
    noise: float = 0.0,
    quality: str | None = None,
    seed: int = 0,
    image_size: int = 48,
    progress: bool = False,
) -> VideoDataset:
    """Roll out the scripted demonstrator and keep its observation frames, whole episodes only.

    Stops after the first episode that brings the total to at least ``n_transitions``; with
    ``n_episodes`` it generates exactly that many episodes instead. Frames are ``(H, W, 3)`` uint8 images
    in ``domain`` (image tasks) or 6-D float32 states seen in the state domain ``domain`` (Acrobot);
    ``domain=None`` is :data:`DEFAULT_OBSERVATION_DOMAIN`. The demonstrator reads ``info["state"]``, so
    the trajectories of one seed are the same in every domain.
    """
    spec = get_task(task)
    domain = resolve_domain(spec, domain)
    if n_episodes is None and n_transitions < 1:
        raise ValueError(f"n_transitions must be >= 1, got {n_transitions}")
    if n_episodes is not None and n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    expert = make_demonstrator(spec, noise=noise, seed=seed, quality=quality)  # validates quality first
    env = make_env(spec, domain, image_size)
    # Episode reset seeds come from one seeded stream: the dataset is a function of ``seed``.
    seeds = np.random.default_rng(seed)
    total = n_episodes if n_episodes is not None else n_transitions
    bar = Progress(
        total, f"generate {spec.name}/{domain}", "episodes" if n_episodes else "transitions", progress
    )
    episodes, reached, any_step, n_success = [], [], [], 0
    count = 0
    try:
        while (n_episodes is not None and len(episodes) < n_episodes) or (
            n_episodes is None and count < n_transitions
        ):
            frames, goal, success = rollout_episode(env, expert, seed=int(seeds.integers(2**31 - 1)))
            episodes.append(frames)
            reached.append(goal)
            any_step.append(success)
            n_success += goal
            count += len(frames) - 1
            bar.update(1 if n_episodes is not None else min(len(frames) - 1, max(total - bar.n, 0)))
    finally:
        bar.close()
        env.close()
    meta = {
        "task": spec.name,
        "env_id": spec.env_id,
        "domain": domain,
        "demonstrator": _demonstrator_name(expert),
        # The effective action noise (an Acrobot quality sets it).
        "noise": float(getattr(expert, "noise", noise)),
        "quality": quality,
        "seed": int(seed),
        "image_size": int(image_size) if spec.pixels else None,
        "requested_transitions": None if n_episodes is not None else int(n_transitions),
        "requested_episodes": n_episodes,
        "success_rate": n_success / len(episodes),
        "success_any_step_rate": sum(any_step) / len(episodes),
    }
    return VideoDataset.from_episodes(episodes, meta=meta, reached_goal=reached, success_any_step=any_step)


def generate_paired(
    task: str,
    *,
    n: int = 200,
    domain: str = "human",
    noise: float = DEFAULT_PAIRED_NOISE,
    seed: int = 0,
    image_size: int = 48,
    per_episode: int = 10,
    progress: bool = False,
) -> PairedDataset:
    """N states visited by noisy demonstrator rollouts, each rendered in ``robot`` and in ``domain``.

    Each visited state is kept independently with probability ``per_episode / (episode_steps + 1)``, so
    about ``per_episode`` states per episode, spread over the whole episode.
    """
    spec = get_task(task)
    if not spec.pixels:
        raise ValueError(
            f"task {spec.name!r} has state observations: paired images exist for image tasks only"
        )
    domain = resolve_domain(spec, domain)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if per_episode < 1:
        raise ValueError(f"per_episode must be >= 1, got {per_episode}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    expert = make_demonstrator(spec, noise=noise, seed=seed, quality=None)
    env = make_env(spec, "robot", image_size)
    rng = np.random.default_rng(seed)
    keep_prob = min(1.0, per_episode / (spec.episode_steps + 1))
    robot, human, states = [], [], []
    bar = Progress(n, f"paired {spec.name}/robot+{domain}", "pairs", progress)
    n_episodes = 0

    def maybe_keep(info) -> None:
        if len(robot) < n and rng.random() < keep_prob:
            robot.append(env.unwrapped.render_domain("robot"))
            human.append(env.unwrapped.render_domain(domain))
            states.append(np.asarray(info["state"], dtype=np.float32))
            bar.update(1)

    try:
        while len(robot) < n:
            obs, info = env.reset(seed=int(rng.integers(2**31 - 1)))
            expert.reset()
            n_episodes += 1
            maybe_keep(info)
            while len(robot) < n:
                obs, _, terminated, truncated, info = env.step(expert.act(obs, info))
                maybe_keep(info)
                if terminated or truncated:
                    break
    finally:
        bar.close()
        env.close()
    meta = {
        "task": spec.name,
        "env_id": spec.env_id,
        "domain": domain,
        "domains": {"robot": "robot", "human": domain},
        "demonstrator": _demonstrator_name(expert),
        "noise": float(noise),
        "seed": int(seed),
        "image_size": int(image_size),
        "per_episode": int(per_episode),
        "n_rollouts": n_episodes,
    }
    return PairedDataset.from_arrays(np.stack(robot), np.stack(human), np.stack(states), meta=meta)


def augment_dataset(
    ds: VideoDataset,
    mode: str,
    *,
    j: int = 5,
    ratio: float = 1.0,
    start_range: tuple[int, int] = (10, 25),
    jitter_mode: str = "fixed",
    seed: int = 0,
    source: dict[str, Any] | None = None,
) -> VideoDataset:
    """Apply the Video Data Generator (``reverse`` or ``jitter``) to the original videos of ``ds``.

    Returns a dataset of the augmented videos only (the trainer combines it with the originals):
    ``source_index`` points at episodes of ``ds``; augmented videos never end in a goal state
    (``reached_goal`` False). ``source`` (e.g. the input file and its hash) is recorded in the metadata.
    """
    from rlmu.data.vdg import augment_videos

    if mode not in KINDS[1:]:
        raise ValueError(f"unknown augmentation mode {mode!r}; choose one of {list(KINDS[1:])}")
    originals = np.flatnonzero(ds.kind == "original")
    if len(originals) == 0:
        raise ValueError("the input dataset holds no original videos to augment")
    videos = augment_videos(
        [ds.episode(int(i)) for i in originals],
        mode,
        j=j,
        ratio=ratio,
        start_range=tuple(start_range),
        jitter_mode=jitter_mode,
        rng=np.random.default_rng(seed),
    )
    if not videos:
        raise ValueError(f"ratio {ratio} over {len(originals)} videos produced no augmented video")
    inherited = ("task", "env_id", "domain", "demonstrator", "noise", "quality", "seed", "image_size")
    meta = {k: ds.meta.get(k) for k in inherited}
    meta["augmentation"] = {
        "mode": mode,
        "j": int(j) if mode == "jitter" else None,
        "ratio": float(ratio),
        "start_range": [int(start_range[0]), int(start_range[1])] if mode == "jitter" else None,
        "jitter_mode": jitter_mode if mode == "jitter" else None,
        "seed": int(seed),
        "source": source or {},
    }
    return VideoDataset.from_episodes(
        [np.asarray(v.frames) for v in videos],
        meta=meta,
        reached_goal=[False] * len(videos),
        success_any_step=[False] * len(videos),
        kind=[v.kind for v in videos],
        source_index=[int(originals[v.source_index]) for v in videos],
        reversed_masks=[np.asarray(v.reversed_mask, dtype=bool) for v in videos],
        jitter_j=[int(v.j) if v.kind == "jitter" else -1 for v in videos],
        jitter_start=[int(v.start) if v.kind == "jitter" else -1 for v in videos],
    )
