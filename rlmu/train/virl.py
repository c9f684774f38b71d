"""VIRL in the training loop: the demonstration, the distance model's rounds, the reward SAC learns from.

METHODS section 3 (VIRL). The trainer owns one :class:`VirlReward` when ``virl.enabled``:

- **Demonstration**: episode ``virl.demo_episode`` of the observation-video file ``virl.demo``, or, with no
  file, one episode of the task's noise-free scripted expert (Acrobot: quality ``high``) in the agent's own
  environment (robot domain, the run's image size), reset with ``virl.demo_seed``.
- **Online reward**: the distance model is recurrent and causal, so the reward of transition
  ``o_t -> o_{t+1}`` (the reward of frame ``t + 1``, aligned with demo frame ``min(t + 1, T_demo)``) depends
  only on the episode's prefix. The trainer therefore scores each transition when it is stored, carrying
  the recurrent state of the current episode from step to step: every stored reward is the current model's
  score of its episode prefix, never a placeholder, and it equals (to float rounding) what rescoring the
  whole episode gives (``rlmu.virl.recompute_rewards``).
- **Rounds**: every ``virl.retrain_every`` environment steps the distance model is trained for
  ``virl.train_steps`` updates on pairs built from the demo, the ``virl.rollouts_kept`` most recent
  complete agent episodes (read from the replay buffer, whose frames are stored once) and the other-task
  videos; then the reward of every stored transition is recomputed with the new model, and the recurrent
  state of the unfinished episode is rebuilt from its frames. An agent episode belongs to the round in
  which it completed (the policy round that collected it): the (agent, agent) positives pair two
  different episodes of one round.
- **Other-task videos** (``virl.other_videos``): every episode of each listed observation-video file, of
  another task than the run's, with the demonstration's frame shape.
- **Checkpoint**: the distance model, its optimizer, the pair generator's state, the pre-training counter,
  the first episode of every round, the current episode's recurrent state and a digest of the
  demonstration (the agent rollouts are in the replay buffer, which is checkpointed). Resume is exact.

Frames given to the distance model are HWC (pixels) or state vectors, as in ``rlmu.virl``; the replay
buffer stores pixels CHW.
"""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

import numpy as np
import torch

from rlmu.errors import CheckpointError, UserError
from rlmu.seeding import SEED_TAG_VIRL_PAIRS, child_seed
from rlmu.tasks import TASKS, TaskSpec, get_task
from rlmu.train.replay import ReplayBuffer, rng_state, set_rng_state
from rlmu.virl import DistanceLearner, recompute_rewards
from rlmu.virl.pairs import as_float
from rlmu.virl.reward import align_demo, distance_to_reward


def _digest(a: np.ndarray) -> str:
    h = hashlib.sha256(str((a.shape, a.dtype.str)).encode())
    h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _load_frames_file(path: str, field: str):
    from rlmu.data.format import DatasetError, load_video_dataset

    try:
        return load_video_dataset(path)
    except DatasetError as exc:
        raise UserError(f"{field}: {exc}") from None


def load_demo(cfg, spec: TaskSpec, make_env) -> tuple[np.ndarray, str]:
    """The demonstration ``(T + 1, *frame_shape)`` (HWC uint8 or float32 states) and a line describing it."""
    v = cfg.virl
    if v.demo is not None:
        ds = _load_frames_file(v.demo, "virl.demo")
        if ds.meta.get("task") != spec.name:
            raise UserError(
                f"virl.demo: {v.demo}: dataset is for task {ds.meta.get('task')!r}, this run is {spec.name!r}"
            )
        want = "pixels" if spec.pixels else "state"
        if ds.meta.get("obs_kind") != want:
            raise UserError(
                f"virl.demo: {v.demo}: dataset holds {ds.meta.get('obs_kind')} frames, task needs {want}"
            )
        if spec.pixels and ds.frames.shape[1:3] != (cfg.image_size, cfg.image_size):
            raise UserError(
                f"virl.demo: {v.demo}: frames are {ds.frames.shape[1]}x{ds.frames.shape[2]}, "
                f"run image_size is {cfg.image_size}"
            )
        if v.demo_episode >= ds.n_episodes:
            raise UserError(
                f"virl.demo_episode: {v.demo_episode} is out of range, {v.demo} holds {ds.n_episodes} episodes"
            )
        frames = np.array(ds.episode(v.demo_episode))
        return frames, (
            f"episode {v.demo_episode} of {v.demo} ({len(frames) - 1} steps, domain {ds.meta.get('domain')}, "
            f"reached goal {bool(ds.reached_goal[v.demo_episode])})"
        )
    from rlmu.data.generate import make_demonstrator, rollout_episode

    expert = make_demonstrator(
        spec, noise=0.0, seed=v.demo_seed, quality="high" if spec.name == "acrobot" else None
    )
    env = make_env()
    try:
        frames, reached = rollout_episode(env, expert, seed=v.demo_seed)[:2]  # (frames, ends in the goal)
    finally:
        env.close()
    if spec.pixels:
        frames = frames.astype(np.uint8)
    else:
        frames = frames.astype(np.float32)
    return (
        frames,
        f"scripted expert, reset seed {v.demo_seed} ({len(frames) - 1} steps, reached goal {reached})",
    )


# The observation domain of the other-task videos the workflow generates for VIRL runs: the agent's own
# (the demonstration and the agent's rollouts are rendered in it), so a video is a negative for what it
# shows, not for how it is rendered.
OTHER_VIDEO_DOMAIN = "robot"


def other_tasks(task: str) -> list[str]:
    """The tasks whose videos are a VIRL run's negatives "another task's video": every other task with
    image observations, for an image task (push: drawer; drawer: push). A state task has none (Acrobot is
    the only one, and an image or another state space is no video of its kind)."""
    spec = get_task(task)
    if not spec.pixels:
        return []
    return [t.name for t in TASKS.values() if t.pixels and t.name != spec.name]


def load_other_videos(cfg, spec: TaskSpec, frame_shape: tuple[int, ...]) -> list[np.ndarray]:
    """Every episode of the ``virl.other_videos`` files (negatives "another task's video"), in file order.

    Each file must hold another task than the run's, with the demonstration's frame shape.
    """
    out: list[np.ndarray] = []
    for path in cfg.virl.other_videos:
        ds = _load_frames_file(path, "virl.other_videos")
        if ds.meta.get("task") == spec.name:
            raise UserError(
                f"virl.other_videos: {path}: holds videos of this run's own task {spec.name!r}, "
                "not of another task"
            )
        if tuple(ds.frames.shape[1:]) != tuple(frame_shape):
            raise UserError(
                f"virl.other_videos: {path}: frames have shape {tuple(ds.frames.shape[1:])}, "
                f"the demonstration's are {tuple(frame_shape)}"
            )
        out += [np.array(e) for e in ds.episodes]
    return out


class VirlReward:
    """The VIRL side of a run: demo, distance learner, online rewards, retraining rounds and rescoring.

    Args:
        cfg: the run's ``TrainConfig`` (reads ``seed``, ``image_size`` and ``virl``).
        spec: the task.
        replay: the run's interaction buffer (rewards are written into it; frames are read from it).
        make_env: builds an environment like the agent's (for the in-process demonstration).
        device: torch device of the distance model.
    """

    def __init__(self, cfg, spec: TaskSpec, replay: ReplayBuffer, make_env, device: str = "cpu"):

        self.vcfg = cfg.virl
        self.dcfg = cfg.virl.distance_config()
        self.replay = replay
        self.pixels = spec.pixels
        self.demo, self.demo_description = load_demo(cfg, spec, make_env)
        self.other_videos = load_other_videos(cfg, spec, self.demo.shape[1:])
        self.learner = DistanceLearner(tuple(self.demo.shape[1:]), self.dcfg, device)
        self.learner.model.eval()
        self.device = self.learner.device
        self.rng = np.random.default_rng(child_seed(cfg.seed, SEED_TAG_VIRL_PAIRS))
        self.pretrain_steps_done = 0
        # First episode id of each policy round: round k holds the episodes completed during it, ids in
        # [round_starts[k], round_starts[k + 1]).
        self.round_starts: list[int] = [0]
        # The agent's frames 0 .. episode_steps are compared with these demo frames (clamped at its end).
        self.horizon = spec.episode_steps + 1
        self._hx: Any = None  # recurrent state of the current episode after its newest frame
        self._refresh_demo()

    @property
    def model(self):
        return self.learner.model

    # ------------------------------------------------------------------------------------ model calls
    def _model_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Buffer frames ``(N, C, H, W)`` uint8 / ``(N, D)`` -> model input ``(N, *frame_shape)`` float."""
        if self.pixels:
            frames = np.moveaxis(frames, 1, -1)
        return torch.as_tensor(as_float(frames), device=self.device)

    @torch.no_grad()
    def _refresh_demo(self) -> None:
        """Demo embeddings ``e (horizon, E)``, ``h (horizon, R)`` under the current model."""
        seq = torch.as_tensor(as_float(align_demo(self.demo, self.horizon))[None], device=self.device)
        e, h = self.model(seq)
        self._demo_e, self._demo_h = e[0], h[0]

    @torch.no_grad()
    def _advance(self, frames: np.ndarray, hx: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Feed buffer frames ``(N, ...)`` of one episode to the model from recurrent state ``hx``.

        Returns ``e (N, E)``, ``h (N, R)`` and the recurrent state after the last frame.
        """
        e = self.model.frame_encoder(self._model_frames(frames))
        h, hx = self.model.rnn(e[None], hx)
        return e, h[0], hx

    # -------------------------------------------------------------------------------- online rewards
    def begin_episode(self, obs: np.ndarray) -> None:
        """Start the recurrent state of a new episode with its reset observation (buffer layout)."""
        _, _, self._hx = self._advance(obs[None], None)

    def step_reward(self, next_obs: np.ndarray, t_next: int) -> float:
        """Reward of the transition that produced ``next_obs``, frame ``t_next`` (>= 1) of the episode."""
        if self._hx is None:
            raise RuntimeError("begin_episode() must be called before step_reward()")
        e, h, self._hx = self._advance(next_obs[None], self._hx)
        k = min(int(t_next), self.horizon - 1)
        d_frame = torch.linalg.vector_norm(e[0] - self._demo_e[k]).cpu().numpy()
        d_seq = torch.linalg.vector_norm(h[0] - self._demo_h[k]).cpu().numpy()
        return float(distance_to_reward(d_seq, d_frame, self.dcfg))

    # ------------------------------------------------------------------------------- distance training
    def pretrain_step(self) -> dict[str, float]:
        """One distance update on the demo (+ other videos); no agent rollouts exist yet."""
        losses = self.learner.train(self.demo, [], self.other_videos, self.rng, steps=1)
        self.pretrain_steps_done += 1
        if self.pretrain_steps_done >= self.vcfg.pretrain_steps:
            self._refresh_demo()
        return losses

    def episode_round(self, episode: int) -> int:
        """The policy round in which agent episode ``episode`` completed (0: before the first retrain)."""
        return bisect.bisect_right(self.round_starts, int(episode)) - 1

    def recent_rollouts(self, newest_complete: int) -> tuple[list[np.ndarray], list[int]]:
        """Frames of the ``rollouts_kept`` newest complete episodes with id <= ``newest_complete`` that are
        still whole in the replay buffer, oldest first (model layout: HWC pixels or states), and the round
        of each."""
        if self.vcfg.rollouts_kept == 0 or len(self.replay) == 0:
            return [], []
        ids = np.unique(self.replay.episode_id[self.replay.valid_slots()])
        ids = ids[ids <= newest_complete][::-1]
        out: list[np.ndarray] = []
        rounds: list[int] = []
        for ep in ids:
            frames = self.replay.episode_frames(int(ep), channels_last=self.pixels)
            if frames is None:  # its start was already overwritten: so are all older ones
                break
            out.append(frames)
            rounds.append(self.episode_round(int(ep)))
            if len(out) == self.vcfg.rollouts_kept:
                break
        return out[::-1], rounds[::-1]

    def retrain(self, current_episode: int, in_progress: bool) -> dict[str, float]:
        """One round: train on demo + recent rollouts (+ other videos), then rescore the replay buffer.

        ``current_episode`` is the id of the episode in progress (``in_progress``) or of the next one.
        Returns the mean losses of the round's updates (``loss_distance`` among them).
        """
        rollouts, rounds = self.recent_rollouts(current_episode - 1)
        losses = self.learner.train(self.demo, rollouts, self.other_videos, self.rng, agent_rounds=rounds)
        self.round_starts.append(int(current_episode))  # the next round's episodes complete after this one
        self._refresh_demo()
        self.rescore_replay()
        if in_progress:
            frames = self.replay.episode_frames(current_episode)
            if frames is None:
                raise RuntimeError("the replay buffer no longer holds the start of the current episode")
            _, _, self._hx = self._advance(frames, None)
        else:
            self._hx = None
        return losses

    def rescore_replay(self) -> None:
        """Recompute the reward of every stored transition with the current model; nothing else changes."""
        r = self.replay
        slots = r.valid_slots()
        if len(slots) == 0:
            return
        rewards = recompute_rewards(
            self.model,
            self.demo,
            r.frames,
            r.obs_index[slots],
            r.episode_id[slots],
            r.time_index[slots],
            self.dcfg,
            channels_first=self.pixels,
        )
        r.set_rewards(slots, rewards)

    # ------------------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        hx = self._hx
        if isinstance(hx, tuple):  # LSTM: (h, c)
            hx = list(hx)
        return {
            "learner": self.learner.state_dict(),
            "rng": rng_state(self.rng),
            "pretrain_steps_done": self.pretrain_steps_done,
            "round_starts": list(self.round_starts),
            "hx": hx,
            "demo_sha256": _digest(self.demo),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["demo_sha256"] != _digest(self.demo):
            raise ValueError(
                "the VIRL demonstration differs from the one this run was checkpointed with "
                "(virl.demo file changed since the run started?)"
            )
        self.learner.load_state_dict(state["learner"])
        self.learner.model.eval()
        set_rng_state(self.rng, state["rng"])
        self.pretrain_steps_done = int(state["pretrain_steps_done"])
        if "round_starts" not in state:
            raise CheckpointError(
                "the VIRL state of this checkpoint has no policy rounds (written by an older rlmu); "
                "restart the run"
            )
        self.round_starts = [int(e) for e in state["round_starts"]]
        hx = state["hx"]
        if isinstance(hx, list):
            hx = tuple(t.to(self.device) for t in hx)
        elif hx is not None:
            hx = hx.to(self.device)
        self._hx = hx
        self._refresh_demo()
