"""On-disk formats of observation videos and paired data (METHODS section 2); see ``docs/data_format.md``.

Both formats are a single ``.npz`` archive (a zip of ``.npy`` arrays) that is written atomically and read
with ``np.load(allow_pickle=False)``: no pickled objects, so any numpy (or any zip + ``.npy`` reader) can
open it. Each archive carries a ``meta_json`` array, the UTF-8 bytes of a JSON metadata record whose
``format`` and ``format_version`` keys identify the file type.

Observation videos (``VIDEO_FORMAT``): frames only, per episode, concatenated once::

    frames            (sum(T_i + 1), H, W, 3) uint8   or (sum(T_i + 1), D) float32 for state tasks
    episode_starts    (E,) int64   index in ``frames`` of episode i's first frame
    episode_lengths   (E,) int64   T_i, the number of transitions of episode i (it has T_i + 1 frames)
    reached_goal      (E,) bool    the video ends in a goal state (what reward relabelling needs; not a reward)
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
missing or inconsistent arrays, a truncated archive) raises :class:`DatasetError` naming the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlmu.errors import DatasetError
from rlmu.utils.io import atomic_open

VIDEO_FORMAT = "rlmu-observation-videos"
PAIRED_FORMAT = "rlmu-paired-data"
# Bump on any change of array names, dtypes, shapes or meaning; readers accept exactly this version.
FORMAT_VERSION = 1

KINDS: tuple[str, ...] = ("original", "reverse", "jitter")
META_ARRAY = "meta_json"
_ZIP_MAGIC = b"PK\x03\x04"

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
        kind: list[str] | None = None,
        source_index: list[int] | None = None,
        reversed_masks: list[np.ndarray] | None = None,
        jitter_j: list[int] | None = None,
        jitter_start: list[int] | None = None,
    ) -> VideoDataset:
        """Concatenate per-episode frame arrays ``(T_i + 1, ...)`` into one dataset.

        ``meta`` holds the descriptive keys (task, domain, demonstrator, ...); the format keys and counts
        are filled in here (see :func:`make_video_meta`). Omitted per-episode fields default to original
        videos: kind "original", source -1, no jitter, no reversed transitions.
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

    def relabelled(self, task: str | None = None, negative_reward: float | None = None):
        """Rewards and terminals per flat transition (METHODS section 2, reward relabelling).

        Returns ``Relabelled(reward, terminal)`` with ``(n_transitions,)`` arrays in the order of
        :meth:`transition_indices`. ``task`` defaults to the dataset's task; ``negative_reward`` enables the
        negative-reward variant on reversed segments.
        """
        from rlmu.data.relabel import Relabelled, relabel

        task = task if task is not None else self.meta["task"]
        rewards, terminals = [], []
        for i in range(self.n_episodes):
            kind = str(self.kind[i])
            out = relabel(
                int(self.episode_lengths[i]),
                task=task,
                reached_goal=bool(self.reached_goal[i]),
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
            "kind": self.kind,
            "source_index": self.source_index,
            "jitter_j": self.jitter_j,
            "jitter_start": self.jitter_start,
            "reversed_mask": self.reversed_mask,
        }


def make_video_meta(meta: dict[str, Any], *, obs_kind: str, n_episodes: int, n_transitions: int) -> dict:
    """Complete a descriptive metadata record with the format keys, versions, time stamp and counts."""
    out = dict(meta)
    out.setdefault("domain", "state" if obs_kind == "state" else None)
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
    """Read and validate an observation-video file; any problem raises :class:`DatasetError`."""
    path = Path(path)
    arrays, meta = _read_npz(path, VIDEO_FORMAT, VIDEO_META_REQUIRED)
    names = (
        "frames",
        "episode_starts",
        "episode_lengths",
        "reached_goal",
        "kind",
        "source_index",
        "jitter_j",
        "jitter_start",
        "reversed_mask",
    )
    _require_arrays(path, arrays, names)
    ds = VideoDataset(**{k: arrays[k] for k in names}, meta=meta, path=path)
    _check_video(ds, str(path))
    return ds


def _check_video(ds: VideoDataset, where: str) -> None:
    def fail(problem: str) -> None:
        raise DatasetError(f"{where}: {problem}")

    expect = {
        "episode_starts": np.int64,
        "episode_lengths": np.int64,
        "reached_goal": np.bool_,
        "source_index": np.int64,
        "jitter_j": np.int64,
        "jitter_start": np.int64,
        "reversed_mask": np.bool_,
    }
    for name, dtype in expect.items():
        a = getattr(ds, name)
        if a.dtype != dtype or a.ndim != 1:
            fail(f"array {name!r} must be 1-D {np.dtype(dtype).name}, got {a.ndim}-D {a.dtype}")
    if ds.kind.dtype.kind != "U" or ds.kind.ndim != 1:
        fail(f"array 'kind' must be a 1-D unicode array, got {ds.kind.ndim}-D {ds.kind.dtype}")
    meta = ds.meta
    obs_kind = meta.get("obs_kind")
    f = ds.frames
    if obs_kind == "pixels":
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            fail(f"pixel frames must be (N, H, W, 3) uint8, got {f.shape} {f.dtype}")
        size = meta.get("image_size")
        if size is not None and f.shape[1:3] != (size, size):
            fail(f"frames are {f.shape[1]}x{f.shape[2]} but metadata says image_size {size}")
    elif obs_kind == "state":
        if f.dtype != np.float32 or f.ndim != 2:
            fail(f"state frames must be (N, D) float32, got {f.shape} {f.dtype}")
    else:
        fail(f"metadata obs_kind must be 'pixels' or 'state', got {obs_kind!r}")
    e = len(ds.episode_lengths)
    for name in ("episode_starts", "reached_goal", "kind", "source_index", "jitter_j", "jitter_start"):
        if len(getattr(ds, name)) != e:
            fail(f"array {name!r} has {len(getattr(ds, name))} entries but there are {e} episodes")
    if e == 0:
        fail("no episodes")
    lengths = ds.episode_lengths
    if (lengths < 1).any():
        fail(f"episode_lengths must be >= 1, episode {int(np.argmax(lengths < 1))} has {int(lengths.min())}")
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
    if ds.reached_goal[~original].any():
        fail("reached_goal is set on an augmented video; augmented videos never reach the goal")
    per_episode_mask = np.repeat(original, lengths)
    if ds.reversed_mask[per_episode_mask].any():
        fail("reversed_mask marks transitions of an original video, which has no reversed segment")
    if meta.get("n_episodes") != e or meta.get("n_transitions") != n_trans:
        fail(
            f"metadata counts (n_episodes={meta.get('n_episodes')}, n_transitions={meta.get('n_transitions')}) "
            f"do not match the arrays ({e} episodes, {n_trans} transitions)"
        )


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
    arrays, meta = _read_npz(path, PAIRED_FORMAT, PAIRED_META_REQUIRED)
    _require_arrays(path, arrays, ("robot", "human", "state"))
    ds = PairedDataset(
        robot=arrays["robot"], human=arrays["human"], state=arrays["state"], meta=meta, path=path
    )
    _check_paired(ds, str(path))
    return ds


def _check_paired(ds: PairedDataset, where: str) -> None:
    def fail(problem: str) -> None:
        raise DatasetError(f"{where}: {problem}")

    for name in ("robot", "human"):
        a = getattr(ds, name)
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3:
            fail(f"array {name!r} must be (N, H, W, 3) uint8, got {a.shape} {a.dtype}")
    if ds.robot.shape != ds.human.shape:
        fail(f"'robot' {ds.robot.shape} and 'human' {ds.human.shape} shapes differ")
    n = len(ds.robot)
    if n == 0:
        fail("no pairs")
    if ds.state.dtype != np.float32 or ds.state.ndim != 2 or len(ds.state) != n:
        fail(f"array 'state' must be ({n}, D) float32, got {ds.state.shape} {ds.state.dtype}")
    size = ds.meta.get("image_size")
    if ds.robot.shape[1:3] != (size, size):
        fail(f"images are {ds.robot.shape[1]}x{ds.robot.shape[2]} but metadata says image_size {size}")
    if ds.meta.get("n_pairs") != n:
        fail(f"metadata n_pairs={ds.meta.get('n_pairs')} but the arrays hold {n} pairs")


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


def _read_npz(path: Path, format_name: str, required_meta: tuple[str, ...]):
    """Read every array of the archive at ``path`` and check its metadata header.

    Returns ``(arrays, meta)``. Raises :class:`DatasetError` for a missing, foreign, truncated or
    wrong-version file.
    """

    def fail(problem: str) -> DatasetError:
        return DatasetError(f"{path}: {problem}")

    if not path.exists():
        raise fail("no such file")
    if not path.is_file():
        raise fail("not a regular file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise fail(f"cannot read ({exc.strerror or exc})") from exc
    if magic != _ZIP_MAGIC:
        raise fail(f"not an rlmu {format_name} file (not an .npz/zip archive)")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for name in z.files:
                arrays[name] = z[name]
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise fail(f"truncated or corrupt archive ({exc})") from exc
    except ValueError as exc:
        # numpy's messages for short array data ("cannot reshape ...") and for object arrays.
        raise fail(f"corrupt or unsupported array data ({exc})") from exc
    except (OSError, RuntimeError) as exc:
        raise fail(f"cannot read archive ({exc})") from exc
    if META_ARRAY not in arrays:
        raise fail(f"not an rlmu dataset (no {META_ARRAY!r} array; arrays: {sorted(arrays)})")
    raw = arrays.pop(META_ARRAY)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"{META_ARRAY!r} must be 1-D uint8, got {raw.ndim}-D {raw.dtype}")
        meta = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise fail(f"unreadable metadata ({exc})") from exc
    found = meta.get("format")
    if found != format_name:
        raise fail(f"wrong file type: format {found!r}, expected {format_name!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version != FORMAT_VERSION:
        hint = (
            "written by a newer rlmu; upgrade rlmu"
            if isinstance(version, int) and version > FORMAT_VERSION
            else "regenerate it with this rlmu version"
        )
        raise fail(
            f"format version {version!r} is not supported (this rlmu reads version {FORMAT_VERSION}; {hint})"
        )
    missing = [k for k in required_meta if k not in meta]
    if missing:
        raise fail(f"metadata lacks required key(s) {missing}")
    return arrays, meta


def _require_arrays(path: Path, arrays: dict[str, np.ndarray], names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in arrays]
    if missing:
        raise DatasetError(f"{path}: missing array(s) {missing}")


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
    if not path.is_file():
        raise DatasetError(f"{path}: {'no such file' if not path.exists() else 'not a regular file'}")
    with open(path, "rb") as fh:
        if fh.read(4) != _ZIP_MAGIC:
            raise DatasetError(f"{path}: not an rlmu dataset (not an .npz/zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if META_ARRAY not in z.files:
                raise DatasetError(f"{path}: not an rlmu dataset (no {META_ARRAY!r} array)")
            meta = json.loads(z[META_ARRAY].tobytes().decode("utf-8"))
    except DatasetError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, RuntimeError) as exc:
        raise DatasetError(f"{path}: truncated or corrupt archive ({exc})") from exc
    return meta.get("format") if isinstance(meta, dict) else None
