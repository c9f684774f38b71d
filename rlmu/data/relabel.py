"""Reward relabelling of observation transitions (METHODS section 2, [released] scheme).

Observation videos carry no rewards; RLV gives each transition ``(s_t, s_{t+1})`` a reward and a
terminal flag from the video's outcome alone:

==========  ===================================  ===========================  ==========
task        final transition of a successful     every other transition      terminal
            original video
==========  ===================================  ===========================  ==========
push/drawer r = 10                               r = 0                        final only
acrobot     r = 10                               r = -1                       final only
==========  ===================================  ===========================  ==========

Which videos are successful (``data.success``, :data:`SUCCESS_RULES`): ``any_step`` (default), the task
definition: the task's success held on some step of the video (``success_any_step`` of the dataset);
``final_frame``: the video ends in a goal state (``reached_goal``). On Acrobot the two agree (reaching the
goal ends the episode); on push and drawer a video whose puck or drawer reached the goal and left it again
counts only under ``any_step``.

The terminal flag means "no bootstrap" (the goal ends the episode). A video that does not reach the
goal ends in a time-out: its last transition is not terminal and is bootstrapped.

Augmented videos (``kind`` ``"reverse"`` or ``"jitter"``, see ``rlmu.data.vdg``) never reach the goal:
all their transitions get the step reward (0 or -1) and none is terminal, whatever the outcome of the
source video (``reached_goal`` describes the video at hand and must be False for them). A jittered video
stays near its start frame and never contains the source's last frame. A *reversed* video of a successful
demonstration starts at the goal and ends at the start state: its final transition arrives at the
initial configuration, not at the goal, so rewarding it as a success would teach that moving away from the
goal is what earns the terminal reward. It is therefore labelled as a non-goal-reaching video.

Negative-reward variant (RLMU report sec. 3.2): ``negative_reward`` (METHODS default -0.1, a config
value) is **added** to the step reward of every transition inside a reversed segment (all transitions
of a reversed video; the ``reversed_mask`` of a jittered one). Adding, not setting: for push/drawer the
two agree (the step reward is 0), but for Acrobot setting would turn the -1 step reward into -0.1, i.e.
make reversed motion *better* than ordinary steps, the opposite of the intended penalty; adding gives
-1.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlmu.tasks import get_task

SUCCESS_REWARD = 10.0
#: step reward of a non-final (or non-successful) transition, per task short name
STEP_REWARD: dict[str, float] = {"push": 0.0, "drawer": 0.0, "acrobot": -1.0}
KINDS: tuple[str, ...] = ("original", "reverse", "jitter")
#: which videos earn the terminal reward: success on any step (the task definition) or at the last frame
SUCCESS_RULES: tuple[str, ...] = ("any_step", "final_frame")


@dataclass(frozen=True)
class Relabelled:
    """``reward``: ``(T,)`` float32; ``terminal``: ``(T,)`` bool (True = no bootstrap from s')."""

    reward: np.ndarray
    terminal: np.ndarray


def relabel(
    n_transitions: int,
    *,
    task: str,
    reached_goal: bool,
    kind: str = "original",
    reversed_mask=None,
    negative_reward: float | None = None,
) -> Relabelled:
    """Rewards and terminals of one observation video with ``n_transitions`` (= frames - 1) transitions.

    ``task``: short name or gymnasium id. ``reached_goal``: the video is successful under the run's
    success rule (``VideoDataset.successful``; only an ``"original"`` video can be). ``reversed_mask``: ``(T,)`` bool, the transitions inside reversed segments;
    required for ``"jitter"`` when ``negative_reward`` is set, defaults to all True for ``"reverse"`` and
    must be all False (or None) for ``"original"``. ``negative_reward``: added to the reward of the masked
    transitions (None = plain scheme).
    """
    if isinstance(n_transitions, bool) or int(n_transitions) != n_transitions or n_transitions < 1:
        raise ValueError(f"n_transitions must be an integer >= 1, got {n_transitions!r}")
    n = int(n_transitions)
    spec = get_task(task)  # raises a ValueError listing the tasks
    if spec.name not in STEP_REWARD:
        raise ValueError(f"no relabelling scheme for task {spec.name!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    reached_goal = bool(reached_goal)
    if reached_goal and kind != "original":
        raise ValueError(
            f"reached_goal must be False for a {kind!r} video: augmented videos never reach the goal"
        )
    if negative_reward is not None and not np.isfinite(negative_reward):
        raise ValueError(f"negative_reward must be a finite number or None, got {negative_reward!r}")

    if reversed_mask is None:
        mask = np.full(n, kind == "reverse", dtype=bool)
    else:
        mask = np.asarray(reversed_mask)
        if mask.shape != (n,) or mask.dtype != bool:
            raise ValueError(
                f"reversed_mask must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}"
            )
        if kind == "original" and mask.any():
            raise ValueError(
                "reversed_mask marks transitions of an 'original' video, which has no reversed segment"
            )
        if kind == "reverse" and not mask.all():
            raise ValueError("reversed_mask of a 'reverse' video must be all True")
    if kind == "jitter" and negative_reward is not None and reversed_mask is None:
        raise ValueError("reversed_mask is required for a 'jitter' video when negative_reward is set")

    reward = np.full(n, STEP_REWARD[spec.name], dtype=np.float64)
    terminal = np.zeros(n, dtype=bool)
    if kind == "original" and reached_goal:
        reward[-1] = SUCCESS_REWARD
        terminal[-1] = True
    if negative_reward is not None:
        reward[mask] += float(negative_reward)
    return Relabelled(reward=reward.astype(np.float32), terminal=terminal)


def relabel_video(video, *, task: str, negative_reward: float | None = None) -> Relabelled:
    """Relabel a ``rlmu.data.vdg.AugmentedVideo`` (never goal-reaching)."""
    n = int(np.asarray(video.frames).shape[0]) - 1
    return relabel(
        n,
        task=task,
        reached_goal=False,
        kind=video.kind,
        reversed_mask=np.asarray(video.reversed_mask, dtype=bool),
        negative_reward=negative_reward,
    )


def observation_transitions(labels: Sequence[Relabelled]) -> dict[str, np.ndarray]:
    """Flatten relabelled episodes into transitions over frames stored once.

    The episodes' frames are assumed concatenated in the given order along the time axis
    (``np.concatenate(episodes)``), episode ``i`` holding ``T_i + 1`` frames with ``T_i = len(labels[i].reward)``.
    Returns a dict of ``(sum T_i,)`` arrays: ``obs_index`` and ``next_index`` (int64 rows of the
    concatenated frames, ``next_index = obs_index + 1`` and never crossing an episode boundary),
    ``reward`` (float32), ``terminal`` (bool) and ``episode`` (int64, the episode of each transition).
    """
    lengths = np.array([len(lab.reward) for lab in labels], dtype=np.int64)
    for i, lab in enumerate(labels):
        if len(lab.terminal) != lengths[i]:
            raise ValueError(
                f"labels[{i}]: reward and terminal lengths differ ({lengths[i]} vs {len(lab.terminal)})"
            )
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
    if len(labels) == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        return {
            "obs_index": empty_i,
            "next_index": empty_i.copy(),
            "reward": np.zeros(0, dtype=np.float32),
            "terminal": np.zeros(0, dtype=bool),
            "episode": empty_i.copy(),
        }
    obs_index = np.concatenate(
        [s + np.arange(t, dtype=np.int64) for s, t in zip(starts, lengths, strict=True)]
    )
    return {
        "obs_index": obs_index,
        "next_index": obs_index + 1,
        "reward": np.concatenate([np.asarray(lab.reward, dtype=np.float32) for lab in labels]),
        "terminal": np.concatenate([np.asarray(lab.terminal, dtype=bool) for lab in labels]),
        "episode": np.repeat(np.arange(len(labels), dtype=np.int64), lengths),
    }
