"""Replay buffers with every frame stored once (METHODS section 3: "next observation = next index").

``ReplayBuffer`` holds interaction transitions. Frames live in a ring ``frames`` in a per-episode
contiguous layout: an episode writes its reset observation, then one frame per step, so the next
observation of the transition whose observation is at frame ``i`` is at frame ``(i + 1) % n_frames``
(contiguous modulo the ring, also across the wrap). A transition stores only the index of its first frame.
Frames are written oldest-first; before a frame slot is reused, transitions that still refer to it are
dropped from the tail of the transition ring, so a transition never reads a frame of another episode.
Each transition also records its episode id and its time index in that episode (0 for the step after
reset): VIRL rescoring needs them to rebuild each stored episode's frame sequence, and they locate the
frames of a stored episode without keeping a second copy.

``ObservationBuffer`` holds observation transitions built from videos: all frames of all videos stored
once, an index pair per transition, relabelled rewards and terminal flags. It is rebuilt from the dataset
on resume (it never changes during a run); only its sampler state is checkpointed.

Both sample with their own seeded ``numpy.random.Generator``; ``state_dict`` returns numpy arrays and
plain values only (no pickle), restored with ``load_state_dict``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The state of a numpy Generator as plain values (big integers as decimal strings)."""
    return _stringify(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = _unstringify(state)


def _stringify(obj: Any) -> Any:
    # PCG64 state words are 128-bit integers: store them as strings so any loader (torch weights_only,
    # JSON) reads them back unchanged.
    if isinstance(obj, dict):
        return {k: _stringify(v) for k, v in obj.items()}
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return f"int:{obj}"
    return obj


def _unstringify(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _unstringify(v) for k, v in obj.items()}
    if isinstance(obj, str) and obj.startswith("int:"):
        return int(obj[4:])
    return obj


class ReplayBuffer:
    """Interaction transitions ``(obs, action, reward, next_obs, terminal)``; each frame stored once.

    Args:
        capacity: maximum number of transitions.
        obs_shape: one observation, e.g. ``(3, 48, 48)`` (uint8 pixels, CHW) or ``(6,)`` (float32 state).
        obs_dtype: ``np.uint8`` for pixels, ``np.float32`` for states.
        action_dim: size of the action vector (float32).
        episode_steps: usual episode length; sizes the frame ring so that ``capacity`` transitions of
            full-length episodes fit (one extra frame per episode). Shorter episodes still work: the
            oldest transitions are dropped earlier.
        seed: seed of the sampling generator.
        frame_capacity: override the frame ring size (at least ``capacity + 1``).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: Any,
        action_dim: int,
        *,
        episode_steps: int,
        seed: int,
        frame_capacity: int | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        if frame_capacity is None:
            frame_capacity = self.capacity + math.ceil(self.capacity / max(1, episode_steps)) + 1
        if frame_capacity < self.capacity + 1:
            raise ValueError(f"frame_capacity must be >= capacity + 1, got {frame_capacity}")
        self.n_frames = int(frame_capacity)
        self.obs_shape = tuple(obs_shape)
        self.frames = np.zeros((self.n_frames, *self.obs_shape), dtype=obs_dtype)
        self.obs_index = np.zeros(self.capacity, dtype=np.int64)  # frame index of the observation
        self.action = np.zeros((self.capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.terminal = np.zeros(self.capacity, dtype=np.float32)  # 1 = no bootstrap (not time-outs)
        self.episode_id = np.zeros(self.capacity, dtype=np.int64)  # episode of the transition
        self.time_index = np.zeros(self.capacity, dtype=np.int64)  # t of o_t -> o_{t+1} in its episode
        self.rng = np.random.default_rng(seed)
        self._frame_pos = 0  # next frame slot to write
        self._head = 0  # next transition slot to write
        self._size = 0  # valid transitions, the newest ``_size`` before ``_head``
        self._last_frame = -1  # frame slot of the current observation (-1: no episode started)
        self._frames_wrapped = False  # the frame ring has been filled once (every slot may be in use)
        self._head_wrapped = False  # the transition ring has been filled once
        self._episode = -1  # id of the current episode
        self._episode_t = 0  # time index of the next transition of the current episode

    # -- writing -------------------------------------------------------------------------------------
    def _write_frame(self, obs: np.ndarray) -> int:
        slot = self._frame_pos
        # Drop the oldest transitions that read this slot (as observation or as next observation).
        while self._size > 0:
            tail = (self._head - self._size) % self.capacity
            first = int(self.obs_index[tail])
            if first == slot or (first + 1) % self.n_frames == slot:
                self._size -= 1
            else:
                break
        self.frames[slot] = obs
        self._frame_pos = (slot + 1) % self.n_frames
        self._frames_wrapped |= self._frame_pos == 0
        return slot

    def start_episode(self, obs: np.ndarray, episode: int | None = None) -> None:
        """Store the first observation of a new episode (call after ``env.reset``).

        ``episode`` labels its transitions (``episode_id``); default: the previous id + 1. Ids must grow.
        """
        if episode is None:
            episode = self._episode + 1
        if episode <= self._episode:
            raise ValueError(f"episode ids must increase: got {episode} after {self._episode}")
        self._last_frame = self._write_frame(obs)
        self._episode = int(episode)
        self._episode_t = 0

    def add(self, action: np.ndarray, reward: float, next_obs: np.ndarray, terminal: bool) -> None:
        """Store one step of the current episode: the action taken, its reward and the next observation."""
        if self._last_frame < 0:
            raise RuntimeError("start_episode() must be called before add()")
        first = self._last_frame
        # The transition slot we are about to overwrite (if full) is the tail: drop it first, then write
        # the frame (which may drop more).
        if self._size == self.capacity:
            self._size -= 1
        self._last_frame = self._write_frame(next_obs)
        i = self._head
        self.obs_index[i] = first
        self.action[i] = action
        self.reward[i] = reward
        self.terminal[i] = float(terminal)
        self.episode_id[i] = self._episode
        self.time_index[i] = self._episode_t
        self._episode_t += 1
        self._head = (i + 1) % self.capacity
        self._head_wrapped |= self._head == 0
        self._size += 1

    # -- reading -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._size

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """Uniform sample: ``obs``/``next_obs`` (B, *obs_shape), ``action`` (B, A), ``reward``/``terminal`` (B,)."""
        if self._size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        offsets = self.rng.integers(0, self._size, size=batch_size)
        idx = (self._head - self._size + offsets) % self.capacity
        first = self.obs_index[idx]
        return {
            "obs": self.frames[first],
            "action": self.action[idx],
            "reward": self.reward[idx],
            "next_obs": self.frames[(first + 1) % self.n_frames],
            "terminal": self.terminal[idx],
        }

    def valid_slots(self) -> np.ndarray:
        """Transition slots ``(len,)`` int64 of the stored transitions, oldest first."""
        return (self._head - self._size + np.arange(self._size)) % self.capacity

    def set_rewards(self, slots: np.ndarray, reward: np.ndarray) -> None:
        """Overwrite the rewards of the transitions in ``slots`` (VIRL rescoring); nothing else changes."""
        slots = np.asarray(slots, dtype=np.int64)
        reward = np.asarray(reward, dtype=np.float32)
        if reward.shape != slots.shape:
            raise ValueError(f"{len(slots)} slots but reward has shape {reward.shape}")
        self.reward[slots] = reward

    def episode_frames(self, episode: int, channels_last: bool = False) -> np.ndarray | None:
        """The frames ``(T + 1, *obs_shape)`` (a copy) of a stored episode from its reset observation on,
        or None if its first transition was already dropped or it has none. ``channels_last`` turns
        CHW pixel frames into HWC."""
        slots = self.valid_slots()
        mine = slots[self.episode_id[slots] == episode]
        if len(mine) == 0 or self.time_index[mine[0]] != 0:
            return None
        idx = (self.obs_index[mine[0]] + np.arange(len(mine) + 1)) % self.n_frames
        frames = self.frames[idx]
        return np.ascontiguousarray(np.moveaxis(frames, 1, -1)) if channels_last else frames

    @property
    def last_frame(self) -> np.ndarray:
        return self.frames[self._last_frame]

    @property
    def nbytes(self) -> int:
        arrays = (
            self.frames,
            self.obs_index,
            self.action,
            self.reward,
            self.terminal,
            self.episode_id,
            self.time_index,
        )
        return sum(a.nbytes for a in arrays)

    @property
    def bytes_per_transition(self) -> float:
        """Allocated bytes per transition slot (frames included, once each)."""
        return self.nbytes / self.capacity

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Arrays and plain values only. Only the frames still in use are stored when the ring never
        wrapped, so early checkpoints stay small."""
        n_used = self.n_frames if self._frames_wrapped else self._frame_pos
        n_tr = self.capacity if self._head_wrapped else self._head
        return {
            "capacity": self.capacity,
            "n_frames": self.n_frames,
            "frames": self.frames[:n_used],
            "obs_index": self.obs_index[:n_tr],
            "action": self.action[:n_tr],
            "reward": self.reward[:n_tr],
            "terminal": self.terminal[:n_tr],
            "episode_id": self.episode_id[:n_tr],
            "time_index": self.time_index[:n_tr],
            "episode": self._episode,
            "episode_t": self._episode_t,
            "frame_pos": self._frame_pos,
            "head": self._head,
            "size": self._size,
            "last_frame": self._last_frame,
            "frames_wrapped": self._frames_wrapped,
            "head_wrapped": self._head_wrapped,
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity or int(state["n_frames"]) != self.n_frames:
            raise ValueError(
                f"checkpointed replay buffer has capacity {state['capacity']}/{state['n_frames']} frames, "
                f"this run {self.capacity}/{self.n_frames}"
            )
        frames = np.asarray(state["frames"])
        self.frames[: len(frames)] = frames
        n_tr = len(state["obs_index"])
        self.obs_index[:n_tr] = np.asarray(state["obs_index"])
        self.action[:n_tr] = np.asarray(state["action"])
        self.reward[:n_tr] = np.asarray(state["reward"])
        self.terminal[:n_tr] = np.asarray(state["terminal"])
        # Checkpoints written before episode ids existed lack them: only VIRL reads them, and VIRL runs
        # always wrote them.
        if "episode_id" in state:
            self.episode_id[:n_tr] = np.asarray(state["episode_id"])
            self.time_index[:n_tr] = np.asarray(state["time_index"])
        self._episode = int(state.get("episode", -1))
        self._episode_t = int(state.get("episode_t", 0))
        self._frame_pos = int(state["frame_pos"])
        self._head = int(state["head"])
        self._size = int(state["size"])
        self._last_frame = int(state["last_frame"])
        self._frames_wrapped = bool(state["frames_wrapped"])
        self._head_wrapped = bool(state["head_wrapped"])
        set_rng_state(self.rng, state["rng"])


class ObservationBuffer:
    """Observation transitions from videos (RLV's second buffer), paired frames and MEM sub-sequences.

    Args:
        frames: all video frames, stored once: ``(N, 3, H, W)`` uint8 (CHW) or ``(N, D)`` float32.
        obs_index, next_index: ``(T,)`` int64 frame indices of each transition.
        reward, terminal: ``(T,)`` relabelled rewards and terminal flags (float32).
        episode_starts, episode_lengths: ``(E,)`` the videos used for MEM sub-sequences (frames
            ``[start, start + length]``); typically the original videos only.
        paired_robot, paired_human: ``(P, 3, H, W)`` uint8 paired frames, or None.
        seed: seed of the sampling generator.
    """

    def __init__(
        self,
        frames: np.ndarray,
        obs_index: np.ndarray,
        next_index: np.ndarray,
        reward: np.ndarray,
        terminal: np.ndarray,
        *,
        episode_starts: np.ndarray,
        episode_lengths: np.ndarray,
        paired_robot: np.ndarray | None = None,
        paired_human: np.ndarray | None = None,
        seed: int,
    ):
        n = len(obs_index)
        if n == 0:
            raise ValueError("an observation buffer needs at least one transition")
        for name, a in (("next_index", next_index), ("reward", reward), ("terminal", terminal)):
            if len(a) != n:
                raise ValueError(f"{name} has {len(a)} entries, obs_index {n}")
        self.frames = frames
        self.obs_index = np.asarray(obs_index, dtype=np.int64)
        self.next_index = np.asarray(next_index, dtype=np.int64)
        self.reward = np.asarray(reward, dtype=np.float32)
        self.terminal = np.asarray(terminal, dtype=np.float32)
        self.episode_starts = np.asarray(episode_starts, dtype=np.int64)
        self.episode_lengths = np.asarray(episode_lengths, dtype=np.int64)
        self.paired_robot = paired_robot
        self.paired_human = paired_human
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.obs_index)

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """``obs``/``next_obs`` (B, *frame_shape), ``reward``/``terminal`` (B,)."""
        idx = self.rng.integers(0, len(self.obs_index), size=batch_size)
        return {
            "obs": self.frames[self.obs_index[idx]],
            "next_obs": self.frames[self.next_index[idx]],
            "reward": self.reward[idx],
            "terminal": self.terminal[idx],
        }

    def sample_paired(self, batch_size: int) -> dict[str, np.ndarray]:
        """``robot``/``human`` (N, 3, H, W) uint8 with N = min(batch_size, pairs), drawn without replacement."""
        if self.paired_robot is None or self.paired_human is None:
            raise RuntimeError("no paired data loaded")
        n = min(batch_size, len(self.paired_robot))
        idx = self.rng.choice(len(self.paired_robot), size=n, replace=False)
        return {"robot": self.paired_robot[idx], "human": self.paired_human[idx]}

    def sample_mem(self, batch_size: int, subseq_len: int, n_classes: int) -> dict[str, np.ndarray]:
        """MEM batch (RLMU report Eq. 6): ``frames`` (B, k, *frame_shape) and ``label`` (B,) int64.

        A sub-sequence is ``k`` consecutive frames of one video starting at frame ``m``; its label is the bin
        of ``m`` when the video's ``V = n - k + 1`` valid starts ``[0, n - k]`` (``n`` frames in the video)
        are cut into ``K`` equal parts: ``floor(m * K / V)``. The classes are balanced by construction: the
        label ``c`` is drawn uniformly from ``[0, K)`` and ``m`` uniformly from the starts of bin ``c``,
        ``[ceil(c * V / K), ceil((c + 1) * V / K))``. Every bin holds a start when ``V >= K``, so a video
        is used when it has at least ``k + K - 1`` frames.
        """
        n_frames = self.episode_lengths + 1
        need = subseq_len + n_classes - 1
        usable = np.flatnonzero(n_frames >= need)
        if len(usable) == 0:
            raise ValueError(
                f"no observation video has the {need} frames MEM needs (agent.mem.subseq_len {subseq_len} "
                f"+ agent.mem.n_classes {n_classes} - 1: a valid start frame in each class)"
            )
        vids = usable[self.rng.integers(0, len(usable), size=batch_size)]
        valid = n_frames[vids] - subseq_len + 1  # V, the number of valid start frames
        label = self.rng.integers(0, n_classes, size=batch_size).astype(np.int64)
        lo = -((-label * valid) // n_classes)  # ceil(c * V / K)
        hi = -((-(label + 1) * valid) // n_classes)
        m = lo + (self.rng.random(batch_size) * (hi - lo)).astype(np.int64)
        m = np.minimum(m, hi - 1)  # guard the float edge case
        rows = self.episode_starts[vids][:, None] + m[:, None] + np.arange(subseq_len)[None, :]
        return {"frames": self.frames[rows], "label": label}

    @property
    def bytes_per_transition(self) -> float:
        total = sum(
            a.nbytes for a in (self.frames, self.obs_index, self.next_index, self.reward, self.terminal)
        )
        return total / len(self.obs_index)

    def fingerprint(self) -> str:
        """A digest of the buffer's contents; a resumed run checks that it rebuilt the same buffer."""
        import hashlib

        h = hashlib.sha256()
        for a in (self.frames, self.obs_index, self.next_index, self.reward, self.terminal):
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(np.ascontiguousarray(a).data)
        for a in (self.paired_robot, self.paired_human):
            if a is not None:
                h.update(np.ascontiguousarray(a).data)
        return h.hexdigest()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "fingerprint": self.fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["fingerprint"] != self.fingerprint():
            raise ValueError(
                "the observation data differ from the data this run was checkpointed with "
                "(dataset file changed since the run started)"
            )
        set_rng_state(self.rng, state["rng"])
