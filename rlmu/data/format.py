"""On-disk formats of observation videos and paired data (METHODS section 2); see ``docs/data_format.md``.

Both formats are a single ``.npz`` archive (a zip of ``.npy`` arrays) that is written atomically and read
with ``np.load(allow_pickle=False)``: no pickled objects, so any numpy (or any zip + ``.npy`` reader) can
open it. Each archive carries a ``meta_json`` array, the UTF-8 bytes of a JSON metadata record whose
``format`` and ``format_version`` keys identify the file type.

Observation videos (``VIDEO_FORMAT``): frames only, per episode, concatenated once::

    frames            (sum(T_i + 1), H, W, 3) uint8   or (sum(T_i + 1), D) float32 for state tasks
    episode_starts    (E,) int64   index in ``frames`` of episode i's first frame
    episode_lengths   (E,) int64   T_i, the number of transitions of episode i (it has T_i + 1 frames)
    reached_goal      (E,) bool    the video ends in a goal state (``info["success"]`` at its last frame)
    success_any_step  (E,) bool    the task's success held on some step of the video (the task definition)
    kind              (E,) <U8     "original" | "reverse" | "jitter"
    source_index      (E,) int64   for augmented videos the episode index in the source dataset, else -1
    jitter_j          (E,) int64   jitter segment length j, -1 if not a jitter video
    jitter_start      (E,) int64   jitter start frame s, -1 if not a jitter video
    reversed_mask     (sum(T_i),) bool   per transition: inside a reversed segment (episode order)

Paired data (``PAIRED_FORMAT``): N states rendered in both domains::

    robot   (N, H, W, 3) uint8     the state in the agent's ``robot`` domain
    human   (N, H, W, 3) uint8     the same state in the observation domain
    state   (N, D) float32         the low-dimensional state that was rendered

A reader accepts exactly its own ``format_version``; anything else (another format, another version,
missing, unknown or inconsistent arrays, a truncated archive) raises :class:`DatasetError` naming the file.

Loading reads every member's ``.npy`` header before any array data: dtypes, ranks and the per-row shape
the task needs (``rlmu.tasks``: image tasks ``(H, W, 3)`` uint8, state tasks ``(D,)`` float32 with the
task's D) are checked there, a header that promises more bytes than its member holds is refused, and so is
a file whose arrays would not fit in the memory this process can still allocate. Unknown members are
refused by name without reading them. After reading, the values are checked too: state frames must be
finite and, in the task's own (identity) domain, inside its observation bounds (the error names the row,
episode and frame); in another state domain (``rlmu.envs.state_domains``) they must be finite.

Version 2 added ``success_any_step`` (version 1 files are refused: regenerate them).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlmu.errors import DatasetError
from rlmu.tasks import TaskSpec, get_task
from rlmu.utils.io import atomic_open, available_memory_bytes

VIDEO_FORMAT = "rlmu-observation-videos"
PAIRED_FORMAT = "rlmu-paired-data"
# Bump on any change of array names, dtypes, shapes or meaning; readers accept exactly this version.
FORMAT_VERSION = 2

KINDS: tuple[str, ...] = ("original", "reverse", "jitter")
META_ARRAY = "meta_json"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_META_BYTES = 1 << 20  # a metadata record is a few hundred bytes

VIDEO_ARRAYS: tuple[str, ...] = (
    "frames",
    "episode_starts",
    "episode_lengths",
    "reached_goal",
    "success_any_step",
    "kind",
    "source_index",
    "jitter_j",
    "jitter_start",
    "reversed_mask",
)
PAIRED_ARRAYS: tuple[str, ...] = ("robot", "human", "state")

# Metadata keys every file of each type must carry (written by ``make_meta`` / the savers).
VIDEO_META_REQUIRED: tuple[str, ...] = (
    "format",
    "format_version",
    "task",
    "obs_kind",
    "domain",
    "generator_version",
    "created_at",
    "n_episodes",
    "n_transitions",
)
PAIRED_META_REQUIRED: tuple[str, ...] = (
    "format",
    "format_version",
    "task",
    "domain",
    "image_size",
    "generator_version",
    "created_at",
    "n_pairs",
)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _rlmu_version() -> str:
    from rlmu import __version__

    return __version__


# --------------------------------------------------------------------------------------------------------
# Observation videos
# --------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class VideoDataset:
    """Observation videos in memory: frames stored once, episodes as views into them.

    ``frames`` is ``(n_frames, H, W, 3)`` uint8 (image tasks) or ``(n_frames, D)`` float32 (state tasks);
    episode ``i`` is ``frames[episode_starts[i] : episode_starts[i] + episode_lengths[i] + 1]``.
    ``reversed_mask`` has one entry per transition, episodes in order. ``path`` is set by the loader.
    """

    frames: np.ndarray
    episode_starts: np.ndarray
    episode_lengths: np.ndarray
    reached_goal: np.ndarray
    success_any_step: np.ndarray
    kind: np.ndarray
    source_index: np.ndarray
    jitter_j: np.ndarray
    jitter_start: np.ndarray
    reversed_mask: np.ndarray
    meta: dict[str, Any]
    path: Path | None = field(default=None, compare=False)

    # ---- construction ------------------------------------------------------------------------------

    @classmethod
    def from_episodes(
        cls,
        episodes: list[np.ndarray],
        *,
        meta: dict[str, Any],
        reached_goal: list[bool] | np.ndarray,
        success_any_step: list[bool] | np.ndarray | None = None,
        kind: list[str] | None = None,
        source_index: list[int] | None = None,
        reversed_masks: list[np.ndarray] | None = None,
        jitter_j: list[int] | None = None,
        jitter_start: list[int] | None = None,
    ) -> VideoDataset:
        """Concatenate per-episode frame arrays ``(T_i + 1, ...)`` into one dataset.

        ``meta`` holds the descriptive keys (task, domain, demonstrator, ...); the format keys and counts
        are filled in here (see :func:`make_video_meta`). Omitted per-episode fields default to original
        videos: kind "original", source -1, no jitter, no reversed transitions; ``success_any_step``
        defaults to ``reached_goal`` (a video that ends in the goal succeeded on that step).
        """
        n = len(episodes)
        if n == 0:
            raise ValueError("a video dataset needs at least one episode")
        lengths = np.array([len(e) - 1 for e in episodes], dtype=np.int64)
        if (lengths < 1).any():
            raise ValueError(f"every episode needs at least 2 frames; got lengths {lengths[lengths < 1]}")
        starts = np.zeros(n, dtype=np.int64)
        starts[1:] = np.cumsum(lengths + 1)[:-1]
        if reversed_masks is None:
            mask = np.zeros(int(lengths.sum()), dtype=bool)
        else:
            for i, (m, t) in enumerate(zip(reversed_masks, lengths, strict=True)):
                if len(m) != t:
                    raise ValueError(f"reversed mask of episode {i} has {len(m)} entries, expected {t}")
            mask = np.concatenate([np.asarray(m, dtype=bool) for m in reversed_masks])
        obs_kind = "pixels" if np.asarray(episodes[0]).ndim == 4 else "state"
        ds = cls(
            frames=np.concatenate(episodes, axis=0),
            episode_starts=starts,
            episode_lengths=lengths,
            reached_goal=np.asarray(reached_goal, dtype=bool).reshape(n),
            success_any_step=np.asarray(
                reached_goal if success_any_step is None else success_any_step, dtype=bool
            ).reshape(n),
            kind=np.asarray(kind if kind is not None else ["original"] * n, dtype="<U8"),
            source_index=np.asarray(source_index if source_index is not None else [-1] * n, dtype=np.int64),
            jitter_j=np.asarray(jitter_j if jitter_j is not None else [-1] * n, dtype=np.int64),
            jitter_start=np.asarray(jitter_start if jitter_start is not None else [-1] * n, dtype=np.int64),
            reversed_mask=mask,
            meta={},
        )
        ds.meta = make_video_meta(meta, obs_kind=obs_kind, n_episodes=n, n_transitions=int(lengths.sum()))
        _check_video(ds, "<in memory>")
        return ds

    # ---- views -------------------------------------------------------------------------------------

    @property
    def n_episodes(self) -> int:
        return len(self.episode_lengths)

    @property
    def n_transitions(self) -> int:
        return int(self.episode_lengths.sum())

    @property
    def episodes(self) -> list[np.ndarray]:
        """Per-episode frames ``(T_i + 1, ...)``, as views into ``frames`` (no copy)."""
        return [
            self.frames[s : s + t + 1] for s, t in zip(self.episode_starts, self.episode_lengths, strict=True)
        ]

    def episode(self, i: int) -> np.ndarray:
        s, t = int(self.episode_starts[i]), int(self.episode_lengths[i])
        return self.frames[s : s + t + 1]

    @property
    def transition_offsets(self) -> np.ndarray:
        """``(E + 1,)`` int64: episode i's transitions are ``[offsets[i], offsets[i + 1])`` in flat order."""
        return np.concatenate([[0], np.cumsum(self.episode_lengths)]).astype(np.int64)

    def episode_reversed_mask(self, i: int) -> np.ndarray:
        off = self.transition_offsets
        return self.reversed_mask[off[i] : off[i + 1]]

    def transition_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Flattened transitions as frame indices ``(obs_idx, next_obs_idx)``, each ``(n_transitions,)`` int64.

        Transition k of the flat order is ``(frames[obs_idx[k]], frames[next_obs_idx[k]])``; the order is
        the same as ``reversed_mask`` and :meth:`relabelled`. Frames are never duplicated.
        """
        obs = np.concatenate(
            [
                s + np.arange(t, dtype=np.int64)
                for s, t in zip(self.episode_starts, self.episode_lengths, strict=True)
            ]
        )
        return obs, obs + 1

    def successful(self, success: str = "any_step") -> np.ndarray:
        """``(E,)`` bool: which videos count as successful for reward relabelling. ``success``:
        ``"any_step"`` (the task's success held on some step: the task definition, the default) or
        ``"final_frame"`` (the video ends in a goal state)."""
        from rlmu.data.relabel import SUCCESS_RULES

        if success not in SUCCESS_RULES:
            raise ValueError(f"success must be one of {list(SUCCESS_RULES)}, got {success!r}")
        return self.success_any_step.copy() if success == "any_step" else self.reached_goal.copy()

    def relabelled(
        self, task: str | None = None, negative_reward: float | None = None, success: str = "any_step"
    ):
        """Rewards and terminals per flat transition (METHODS section 2, reward relabelling).

        Returns ``Relabelled(reward, terminal)`` with ``(n_transitions,)`` arrays in the order of
        :meth:`transition_indices`. ``task`` defaults to the dataset's task; ``negative_reward`` enables the
        negative-reward variant on reversed segments; ``success`` picks the videos that earn the terminal
        reward (:meth:`successful`).
        """
        from rlmu.data.relabel import Relabelled, relabel

        task = task if task is not None else self.meta["task"]
        successful = self.successful(success)
        rewards, terminals = [], []
        for i in range(self.n_episodes):
            kind = str(self.kind[i])
            out = relabel(
                int(self.episode_lengths[i]),
                task=task,
                reached_goal=bool(successful[i]),
                kind=kind,
                reversed_mask=None if kind == "original" else self.episode_reversed_mask(i),
                negative_reward=negative_reward,
            )
            rewards.append(np.asarray(out.reward))
            terminals.append(np.asarray(out.terminal))
        return Relabelled(reward=np.concatenate(rewards), terminal=np.concatenate(terminals))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays written to disk (without ``meta_json``)."""
        return {
            "frames": self.frames,
            "episode_starts": self.episode_starts,
            "episode_lengths": self.episode_lengths,
            "reached_goal": self.reached_goal,
            "success_any_step": self.success_any_step,
            "kind": self.kind,
            "source_index": self.source_index,
            "jitter_j": self.jitter_j,
            "jitter_start": self.jitter_start,
            "reversed_mask": self.reversed_mask,
        }


def make_video_meta(meta: dict[str, Any], *, obs_kind: str, n_episodes: int, n_transitions: int) -> dict:
    """Complete a descriptive metadata record with the format keys, versions, time stamp and counts."""
    out = dict(meta)
    out.setdefault("domain", "robot" if obs_kind == "state" else None)
    out.setdefault("generator_version", _rlmu_version())
    out.setdefault("created_at", _now())
    out.update(
        format=VIDEO_FORMAT,
        format_version=FORMAT_VERSION,
        obs_kind=obs_kind,
        n_episodes=int(n_episodes),
        n_transitions=int(n_transitions),
    )
    return out


def save_video_dataset(path: str | os.PathLike, ds: VideoDataset, *, compress: bool = True) -> Path:
    """Validate ``ds`` and write it atomically to ``path`` (an existing file is replaced only on success)."""
    _check_video(ds, "<in memory>")
    return _write_npz(path, ds.arrays(), ds.meta, compress)


def load_video_dataset(path: str | os.PathLike) -> VideoDataset:
    """Read and validate an observation-video file; any problem raises :class:`DatasetError`.

    Headers, task shapes and memory are checked before any array data is read (module docstring).
    """
    path = Path(path)
    arrays, meta = _read_npz(path, VIDEO_FORMAT, VIDEO_META_REQUIRED, VIDEO_ARRAYS, _check_video_layout)
    ds = VideoDataset(**{k: arrays[k] for k in VIDEO_ARRAYS}, meta=meta, path=path)
    _check_video(ds, str(path))
    return ds


def _task_of(meta: dict[str, Any], fail) -> TaskSpec:
    task = meta.get("task")
    if not isinstance(task, str):
        fail(f"metadata task must be a task name, got {task!r}")
    try:
        return get_task(task)
    except ValueError as exc:
        fail(f"metadata task: {exc}")
    raise AssertionError  # unreachable: fail raises


@functools.cache
def task_state_space(task: str) -> tuple[int, np.ndarray, np.ndarray]:
    """``(D, low, high)`` of a state task's observations (float32 bounds from its gymnasium space)."""
    import gymnasium as gym

    import rlmu.envs  # noqa: F401  (registers the tasks)

    spec = get_task(task)
    env = gym.make(spec.env_id)
    try:
        space = env.observation_space
        low = np.asarray(space.low, dtype=np.float32).reshape(-1)
        high = np.asarray(space.high, dtype=np.float32).reshape(-1)
        return int(np.prod(space.shape)), low, high
    finally:
        env.close()


def _check_video_layout(arrays: dict[str, Any], meta: dict[str, Any], where: str) -> None:
    """Dtypes, ranks and per-row shapes of a video file's arrays, against its task.

    Reads only ``.shape`` and ``.dtype``, so it runs on the ``.npy`` headers before any data is read.
    """

    def fail(problem: str) -> None:
        raise DatasetError(f"{where}: {problem}")

    expect = {
        "episode_starts": np.int64,
        "episode_lengths": np.int64,
        "reached_goal": np.bool_,
        "success_any_step": np.bool_,
        "source_index": np.int64,
        "jitter_j": np.int64,
        "jitter_start": np.int64,
        "reversed_mask": np.bool_,
    }
    for name, dtype in expect.items():
        a = arrays[name]
        if a.dtype != dtype or len(a.shape) != 1:
            fail(f"array {name!r} must be 1-D {np.dtype(dtype).name}, got {len(a.shape)}-D {a.dtype}")
    kind = arrays["kind"]
    if kind.dtype.kind != "U" or len(kind.shape) != 1:
        fail(f"array 'kind' must be a 1-D unicode array, got {len(kind.shape)}-D {kind.dtype}")
    if kind.dtype.itemsize > 4 * 64:
        fail(f"array 'kind' has dtype {kind.dtype}; episode kinds are at most 8 characters")
    spec = _task_of(meta, fail)
    obs_kind = meta.get("obs_kind")
    want = "pixels" if spec.pixels else "state"
    if obs_kind not in ("pixels", "state"):
        fail(f"metadata obs_kind must be 'pixels' or 'state', got {obs_kind!r}")
    if obs_kind != want:
        fail(f"metadata obs_kind is {obs_kind!r}, but task {spec.name!r} has {want} observations")
    f = arrays["frames"]
    shape = tuple(int(n) for n in f.shape)
    if spec.pixels:
        if f.dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
            fail(f"pixel frames must be (N, H, W, 3) uint8, got {shape} {f.dtype}")
        size = meta.get("image_size")
        if size is not None and shape[1:3] != (size, size):
            fail(f"frames are {shape[1]}x{shape[2]} but metadata says image_size {size}")
        if shape[1] != shape[2]:
            fail(f"frames are {shape[1]}x{shape[2]}; frames are square")
    else:
        dim = task_state_space(spec.name)[0]
        if f.dtype != np.float32 or len(shape) != 2:
            fail(f"state frames must be (N, D) float32, got {shape} {f.dtype}")
        if shape[1] != dim:
            fail(f"state frames are {shape[1]}-D, task {spec.name!r} has {dim}-D states (frames {shape})")


def _check_video(ds: VideoDataset, where: str) -> None:
    def fail(problem: str) -> None:
        raise DatasetError(f"{where}: {problem}")

    _check_video_layout(ds.arrays(), ds.meta, where)
    meta = ds.meta
    f = ds.frames
    e = len(ds.episode_lengths)
    for name in (
        "episode_starts",
        "reached_goal",
        "success_any_step",
        "kind",
        "source_index",
        "jitter_j",
        "jitter_start",
    ):
        if len(getattr(ds, name)) != e:
            fail(f"array {name!r} has {len(getattr(ds, name))} entries but there are {e} episodes")
    if e == 0:
        fail("no episodes")
    lengths = ds.episode_lengths
    if (lengths < 1).any():
        fail(f"episode_lengths must be >= 1, episode {int(np.argmax(lengths < 1))} has {int(lengths.min())}")
    if (lengths >= len(f)).any():  # also keeps the sums below from overflowing
        bad = int(np.argmax(lengths >= len(f)))
        fail(f"episode {bad} has {int(lengths[bad])} transitions but frames has only {len(f)} rows")
    starts = np.zeros(e, dtype=np.int64)
    starts[1:] = np.cumsum(lengths + 1)[:-1]
    if not np.array_equal(starts, ds.episode_starts):
        bad = int(np.argmax(starts != ds.episode_starts))
        fail(
            f"episode_starts are not contiguous: episode {bad} starts at {int(ds.episode_starts[bad])}, "
            f"expected {int(starts[bad])}"
        )
    n_frames = int((lengths + 1).sum())
    if len(f) != n_frames:
        fail(f"frames has {len(f)} rows but the episode index needs {n_frames} (sum of lengths + 1)")
    n_trans = int(lengths.sum())
    if len(ds.reversed_mask) != n_trans:
        fail(f"reversed_mask has {len(ds.reversed_mask)} entries, expected {n_trans} (one per transition)")
    bad_kinds = sorted(set(ds.kind.tolist()) - set(KINDS))
    if bad_kinds:
        fail(f"unknown episode kind(s) {bad_kinds}; expected one of {list(KINDS)}")
    original = ds.kind == "original"
    if (ds.source_index[original] != -1).any() or (ds.source_index[~original] < 0).any():
        fail("source_index must be -1 for original videos and >= 0 for augmented ones")
    if ds.reached_goal[~original].any() or ds.success_any_step[~original].any():
        fail(
            "reached_goal or success_any_step is set on an augmented video; augmented videos never reach "
            "the goal"
        )
    if (ds.reached_goal & ~ds.success_any_step).any():
        bad = int(np.argmax(ds.reached_goal & ~ds.success_any_step))
        fail(f"episode {bad} reaches the goal at its last frame but success_any_step is false")
    per_episode_mask = np.repeat(original, lengths)
    if ds.reversed_mask[per_episode_mask].any():
        fail("reversed_mask marks transitions of an original video, which has no reversed segment")
    jitter = ds.kind == "jitter"
    if (ds.jitter_j[~jitter] != -1).any() or (ds.jitter_start[~jitter] != -1).any():
        fail("jitter_j and jitter_start must be -1 for videos that are not jitter videos")
    if (ds.jitter_j[jitter] < 1).any() or (ds.jitter_start[jitter] < 0).any():
        fail("jitter videos need jitter_j >= 1 and jitter_start >= 0")
    if type(meta.get("n_episodes")) is not int or type(meta.get("n_transitions")) is not int:
        fail(
            f"metadata n_episodes and n_transitions must be integers, got {meta.get('n_episodes')!r} "
            f"and {meta.get('n_transitions')!r}"
        )
    if meta["n_episodes"] != e or meta["n_transitions"] != n_trans:
        fail(
            f"metadata counts (n_episodes={meta.get('n_episodes')}, n_transitions={meta.get('n_transitions')}) "
            f"do not match the arrays ({e} episodes, {n_trans} transitions)"
        )
    if f.dtype == np.float32:
        from rlmu.envs.state_domains import get_state_domain

        seed = meta.get("domain_seed", 0)
        try:
            if type(seed) is not int:
                raise ValueError(f"domain_seed must be an integer, got {seed!r}")
            domain = get_state_domain(meta.get("domain"), seed=seed)
        except ValueError as exc:
            fail(f"metadata domain: {exc}")
        # Another state domain sees the state through a fixed transform: the bounds are the image of the
        # task's observation box (plus the noise margin).
        _, low, high = task_state_space(_task_of(meta, fail).name)
        _check_state_values(f, domain.bounds(low, high), where, ds.episode_starts, domain=domain.name)


def _check_state_values(
    states: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    where: str,
    episode_starts: np.ndarray | None,
    name: str = "frames",
    domain: str | None = None,
) -> None:
    """State rows must be finite and, with ``bounds`` (the task's observation box in the file's domain),
    inside them.

    The error names the array, row, column and value, and with ``episode_starts`` the episode and frame.
    """
    bad = ~np.isfinite(states)
    if bounds is not None:
        low, high = bounds
        with np.errstate(invalid="ignore"):
            bad |= (states < low) | (states > high)
    if not bad.any():
        return
    row, col = (int(i) for i in np.argwhere(bad)[0])
    value = float(states[row, col])
    at = f"array {name!r} row {row}"
    if episode_starts is not None:
        ep = int(np.searchsorted(episode_starts, row, side="right")) - 1
        at += f" (episode {ep}, frame {row - int(episode_starts[ep])})"
    n_bad = int(bad.any(axis=1).sum())
    if not math.isfinite(value):
        problem = f"{value} is not finite"
    else:
        in_domain = f" in domain {domain!r}" if domain not in (None, "robot", "state") else ""
        problem = (
            f"{value!r} is outside the task's observation range{in_domain} "
            f"[{float(bounds[0][col])!r}, {float(bounds[1][col])!r}]"
        )
    raise DatasetError(f"{where}: {at}, column {col}: {problem} ({n_bad} bad row(s) in all)")


# --------------------------------------------------------------------------------------------------------
# Paired data
# --------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class PairedDataset:
    """N states rendered in both domains: ``robot`` and ``human`` are ``(N, H, W, 3)`` uint8, row i is the
    same state; ``state`` is ``(N, D)`` float32 (the low-dimensional state that was rendered)."""

    robot: np.ndarray
    human: np.ndarray
    state: np.ndarray
    meta: dict[str, Any]
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def from_arrays(cls, robot, human, state, *, meta: dict[str, Any]) -> PairedDataset:
        robot, human = np.asarray(robot, dtype=np.uint8), np.asarray(human, dtype=np.uint8)
        state = np.asarray(state, dtype=np.float32)
        out = dict(meta)
        out.setdefault("generator_version", _rlmu_version())
        out.setdefault("created_at", _now())
        out.setdefault("image_size", int(robot.shape[1]) if robot.ndim == 4 else None)
        out.update(format=PAIRED_FORMAT, format_version=FORMAT_VERSION, n_pairs=int(len(robot)))
        ds = cls(robot=robot, human=human, state=state, meta=out)
        _check_paired(ds, "<in memory>")
        return ds

    def __len__(self) -> int:
        return len(self.robot)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"robot": self.robot, "human": self.human, "state": self.state}


def save_paired_dataset(path: str | os.PathLike, ds: PairedDataset, *, compress: bool = True) -> Path:
    """Validate ``ds`` and write it atomically to ``path``."""
    _check_paired(ds, "<in memory>")
    return _write_npz(path, ds.arrays(), ds.meta, compress)


def load_paired_dataset(path: str | os.PathLike) -> PairedDataset:
    """Read and validate a paired-data file; any problem raises :class:`DatasetError`."""
    path = Path(path)
    arrays, meta = _read_npz(path, PAIRED_FORMAT, PAIRED_META_REQUIRED, PAIRED_ARRAYS, _check_paired_layout)
    ds = PairedDataset(
        robot=arrays["robot"], human=arrays["human"], state=arrays["state"], meta=meta, path=path
    )
    _check_paired(ds, str(path))
    return ds


def _check_paired_layout(arrays: dict[str, Any], meta: dict[str, Any], where: str) -> None:
    """Dtypes and shapes of a paired file's arrays (``.shape``/``.dtype`` only: runs on the headers)."""

    def fail(problem: str) -> None:
        raise DatasetError(f"{where}: {problem}")

    spec = _task_of(meta, fail)
    if not spec.pixels:
        fail(f"paired data is for image tasks; task {spec.name!r} has state observations")
    robot, human, state = arrays["robot"], arrays["human"], arrays["state"]
    for name, a in (("robot", robot), ("human", human)):
        if a.dtype != np.uint8 or len(a.shape) != 4 or a.shape[-1] != 3:
            fail(f"array {name!r} must be (N, H, W, 3) uint8, got {tuple(a.shape)} {a.dtype}")
    if tuple(robot.shape) != tuple(human.shape):
        fail(f"'robot' {tuple(robot.shape)} and 'human' {tuple(human.shape)} shapes differ")
    n = robot.shape[0]
    if n == 0:
        fail("no pairs")
    if state.dtype != np.float32 or len(state.shape) != 2 or state.shape[0] != n:
        fail(f"array 'state' must be ({n}, D) float32, got {tuple(state.shape)} {state.dtype}")
    size = meta.get("image_size")
    if tuple(robot.shape[1:3]) != (size, size):
        fail(f"images are {robot.shape[1]}x{robot.shape[2]} but metadata says image_size {size}")


def _check_paired(ds: PairedDataset, where: str) -> None:
    def fail(problem: str) -> None:
        raise DatasetError(f"{where}: {problem}")

    _check_paired_layout(ds.arrays(), ds.meta, where)
    n = len(ds.robot)
    if ds.meta.get("n_pairs") != n or type(ds.meta.get("n_pairs")) is not int:
        fail(f"metadata n_pairs={ds.meta.get('n_pairs')!r} but the arrays hold {n} pairs")
    # The low-dimensional state is recorded, not trained on: finite is all that is asked of it.
    _check_state_values(ds.state, None, where, None, name="state")


# --------------------------------------------------------------------------------------------------------
# npz container shared by both formats
# --------------------------------------------------------------------------------------------------------


def _meta_to_array(meta: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def _write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict, compress: bool) -> Path:
    path = Path(path)
    payload = {META_ARRAY: _meta_to_array(meta), **arrays}
    save = np.savez_compressed if compress else np.savez
    # The zip goes to a temporary file that replaces ``path`` only once complete (rlmu.utils.io).
    with atomic_open(path, "wb") as f:
        save(f, **payload)
    return path


@dataclass(frozen=True)
class _Header:
    """What a member's ``.npy`` header declares; ``shape`` and ``dtype`` stand in for the array."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


def _fail(path: Path, problem: str) -> DatasetError:
    return DatasetError(f"{path}: {problem}")


def _open_archive(path: Path, format_name: str) -> zipfile.ZipFile:
    if not path.exists():
        raise _fail(path, "no such file")
    if not path.is_file():
        raise _fail(path, "not a regular file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror or exc})") from None
    if magic != _ZIP_MAGIC:
        raise _fail(path, f"not an rlmu {format_name} file (not an .npz/zip archive)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise _fail(path, f"truncated or corrupt archive ({exc})") from None
    except OSError as exc:
        raise _fail(path, f"cannot read archive ({exc.strerror or exc})") from None


def _members(zf: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """Array name -> zip entry; every member must be a uniquely named ``NAME.npy``."""
    out: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".npy") or info.is_dir():
            raise _fail(path, f"archive member {name!r} is not an .npy array (not read)")
        key = name[: -len(".npy")]
        if key in out:
            raise _fail(path, f"archive holds array {key!r} twice")
        out[key] = info
    return out


_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    OSError,
    RuntimeError,
    NotImplementedError,
)


def _read_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str) -> _Header:
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version} is not one numpy's savez writes")
            data_offset = f.tell()
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _fail(path, f"truncated or corrupt archive (array {name!r}: {_one_line(exc)})") from None
    except _READ_ERRORS as exc:
        raise _fail(path, f"array {name!r}: corrupt .npy header ({_one_line(exc)})") from None
    if dtype.hasobject:
        raise _fail(
            path, f"array {name!r} holds pickled Python objects (dtype {dtype}); rlmu never unpickles"
        )
    nbytes = math.prod(int(n) for n in shape) * dtype.itemsize
    held = info.file_size - data_offset
    if nbytes != held:
        raise _fail(
            path,
            f"array {name!r}: its header declares shape {tuple(shape)} {dtype} ({_size(nbytes)}), the "
            f"archive member holds {_size(max(held, 0))} of data (truncated or corrupt)",
        )
    return _Header(info, tuple(int(n) for n in shape), dtype, nbytes)


def _read_array(zf: zipfile.ZipFile, header: _Header, path: Path, name: str) -> np.ndarray:
    try:
        with zf.open(header.info) as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
            if f.read(1):  # reading to the end also makes zipfile check the CRC
                raise ValueError("data after the array")
    except _READ_ERRORS as exc:
        raise _fail(path, f"truncated or corrupt archive (array {name!r}: {_one_line(exc)})") from None
    return arr


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _size(n: int) -> str:
    if n < 2**20:
        return f"{n} bytes"
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def _read_meta(
    zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], path: Path, format_name: str
) -> dict:
    if META_ARRAY not in members:
        raise _fail(path, f"not an rlmu dataset (no {META_ARRAY!r} array; arrays: {sorted(members)})")
    header = _read_header(zf, members[META_ARRAY], path, META_ARRAY)
    if header.dtype != np.uint8 or len(header.shape) != 1:
        raise _fail(
            path,
            f"unreadable metadata ({META_ARRAY!r} must be 1-D uint8, got {len(header.shape)}-D {header.dtype})",
        )
    if header.nbytes > _MAX_META_BYTES:
        raise _fail(path, f"unreadable metadata ({_size(header.nbytes)}; a metadata record is at most 1 MiB)")
    raw = _read_array(zf, header, path, META_ARRAY)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(exc, RecursionError) else _one_line(exc)
        raise _fail(path, f"unreadable metadata ({reason})") from None
    return meta


def _check_format(path: Path, meta: dict, format_name: str, required_meta: tuple[str, ...]) -> None:
    found = meta.get("format")
    if found != format_name:
        raise _fail(path, f"wrong file type: format {found!r}, expected {format_name!r}")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        hint = (
            "written by a newer rlmu; upgrade rlmu"
            if type(version) is int and version > FORMAT_VERSION
            else "regenerate it with this rlmu version"
        )
        raise _fail(
            path,
            f"format version {version!r} is not supported (this rlmu reads version {FORMAT_VERSION}; {hint})",
        )
    missing = [k for k in required_meta if k not in meta]
    if missing:
        raise _fail(path, f"metadata lacks required key(s) {missing}")


class _Proxy:
    """Shape and dtype of an array not read yet (what the layout checks look at)."""

    def __init__(self, header: _Header):
        self.shape, self.dtype = header.shape, header.dtype


def _read_npz(path: Path, format_name: str, required_meta: tuple[str, ...], names: tuple[str, ...], layout):
    """Read the arrays ``names`` of the archive at ``path`` after checking everything that can be checked
    without reading array data: metadata, member names, headers, ``layout(headers, meta, where)`` and
    the memory the arrays need. Returns ``(arrays, meta)``; any problem raises :class:`DatasetError`.
    """
    with _open_archive(path, format_name) as zf:
        members = _members(zf, path)
        meta = _read_meta(zf, members, path, format_name)
        _check_format(path, meta, format_name, required_meta)
        unknown = sorted(set(members) - set(names) - {META_ARRAY})
        if unknown:
            raise _fail(
                path,
                f"unknown array(s) {unknown} (not read); a version-{FORMAT_VERSION} {format_name} file holds "
                f"{', '.join(names)} and {META_ARRAY}",
            )
        missing = [n for n in names if n not in members]
        if missing:
            raise _fail(path, f"missing array(s) {missing}")
        headers = {n: _read_header(zf, members[n], path, n) for n in names}
        layout({n: _Proxy(h) for n, h in headers.items()}, meta, str(path))
        need = sum(h.nbytes for h in headers.values())
        free = available_memory_bytes()
        if free is not None and need > free:
            biggest = max(headers, key=lambda n: headers[n].nbytes)
            raise _fail(
                path,
                f"its arrays need {_size(need)} of memory ({biggest!r} {headers[biggest].shape}: "
                f"{_size(headers[biggest].nbytes)}), this machine has {_size(free)} available",
            )
        arrays = {n: _read_array(zf, headers[n], path, n) for n in names}
    return arrays, meta


def load_dataset(path: str | os.PathLike) -> VideoDataset | PairedDataset:
    """Load a video or paired-data file, whichever ``path`` holds (by its ``format`` metadata key)."""
    path = Path(path)
    fmt = _peek_format(path)
    if fmt == VIDEO_FORMAT:
        return load_video_dataset(path)
    if fmt == PAIRED_FORMAT:
        return load_paired_dataset(path)
    raise DatasetError(
        f"{path}: wrong file type: format {fmt!r}, expected {VIDEO_FORMAT!r} or {PAIRED_FORMAT!r}"
    )


def _peek_format(path: Path) -> Any:
    """The ``format`` key of the file's metadata, reading only the small ``meta_json`` member."""
    with _open_archive(path, "dataset") as zf:
        meta = _read_meta(zf, _members(zf, path), path, "dataset")
    return meta.get("format")
