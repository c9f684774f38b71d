"""Video Data Generator (RLMU report section 3.2; METHODS section 2): "negative" observation videos.

Pure functions over episodes. An episode is an array whose leading axis is time: ``(T + 1, H, W, 3)``
uint8 frames for the image tasks or ``(T + 1, D)`` float states for Acrobot; only the leading axis is
touched, so any trailing shape works. ``T`` is the number of transitions (frame ``t -> t + 1``).

- ``reverse``: the frames in reversed order (``reverse_video``).
- ``negative jitter(j)``: copy frames ``[0, s)``, then append the chunk ``frames[s : s + j]`` forward and
  the same chunk reversed, again and again, until the original length is reached (``negative_jitter``).

Two readings of "repeatedly copy the next j frames" (``jitter_mode``, config ``data.jitter_mode``):

- ``fixed`` (default): the jitter cursor does not advance: every back-and-forth cycle repeats the same
  chunk starting at ``s``;
- ``advancing``: cycle ``c`` uses the chunk starting at ``s + c * j`` ("the next j frames" after the
  previous chunk), so the video creeps forward at half speed with a jump of ``j`` frames between cycles.
  The chunk start stops at ``T - 1``: near the end of a short video the last chunks are clipped (down to
  the single frame ``T - 1``, a pause).

For ``fixed``: the report's loop says "repeatedly copy the next j frames in original and reversed order" and explains
that the result "mimic[s] the initial phases of training the agent where it just moves back and forth
at various positions and does not progress towards the target location". A cursor that advanced by
``j`` per cycle would (a) progress towards the target, at half speed, and (b) join each cycle's last
frame ``frames[c]`` to the next cycle's first frame ``frames[c + j]``, a jump of ``j`` frames that no
real motion produces. With a fixed chunk every transition of a jittered video is a real one-frame step
of the original (forward or backward) or a pause at a turning point, and the video stays near frame
``s``. "Various positions" comes from drawing ``s`` per video.

The last frame of the original is never part of a chunk (the chunk is clipped to ``frames[:T]``): for a
successful video it is the goal frame, and a jittered video must never reach the goal (its relabelled
transitions carry no terminal reward, see ``rlmu.data.relabel``). Hence ``start <= T - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MODES: tuple[str, ...] = ("reverse", "jitter")


@dataclass(frozen=True)
class AugmentedVideo:
    """One generated video.

    ``frames``: ``(T + 1, ...)``, same length and dtype as its source. ``kind``: ``"reverse"`` or
    ``"jitter"``. ``source_index``: position of the source in the list given to :func:`augment_videos`.
    ``reversed_mask``: ``(T,)`` bool, True for transitions inside a reversed segment (all True for a
    reversed video). ``j`` and ``start``: the jitter parameters (None for ``reverse``).
    """

    frames: np.ndarray
    kind: str
    source_index: int
    reversed_mask: np.ndarray
    j: int | None = None
    start: int | None = None


def _check_episode(frames, name: str = "frames") -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim < 1 or frames.shape[0] < 2:
        raise ValueError(
            f"{name} must hold at least 2 frames along the leading (time) axis, got shape {frames.shape}"
        )
    return frames


def reverse_video(frames) -> np.ndarray:
    """The episode with its frames in reversed order (a contiguous copy, same shape and dtype)."""
    frames = _check_episode(frames)
    return np.ascontiguousarray(frames[::-1])


JITTER_MODES: tuple[str, ...] = ("fixed", "advancing")


def jitter_indices(n_frames: int, j: int, start: int, mode: str = "fixed") -> tuple[np.ndarray, np.ndarray]:
    """Source frame indices of a negatively jittered video and its reversed-transition mask.

    Returns ``(index (n_frames,) int64, reversed_mask (n_frames - 1,) bool)``: output frame ``k`` is
    source frame ``index[k]``. With ``c = [start, ..., min(start + j, n_frames - 1) - 1]`` (the chunk,
    never containing the last source frame) the index sequence is ``0, ..., start - 1`` followed by
    ``c, reversed(c), c, reversed(c), ...`` cut at ``n_frames`` (``mode="fixed"``). With
    ``mode="advancing"`` cycle ``i`` uses the chunk ``c_i`` starting at ``min(start + i * j, n_frames - 2)``
    instead: ``c_0, reversed(c_0), c_1, reversed(c_1), ...``.

    A transition ``k -> k + 1`` is "inside a reversed segment" when both output frames belong to the
    same reversed copy of the chunk; these are exactly the transitions that step one frame backwards
    (``index[k + 1] == index[k] - 1``). The pauses at the turning points (a frame followed by itself)
    are not reversed motion and are not marked.

    Example: ``n_frames=12, j=3, start=4`` gives ``0 1 2 3 | 4 5 6 | 6 5 4 | 4 5`` and the mask is True
    for the transitions ``6->5`` and ``5->4`` only; ``mode="advancing"`` gives
    ``0 1 2 3 | 4 5 6 | 6 5 4 | 7 8`` (mask: ``6->5`` and ``5->4``).
    """
    if int(n_frames) != n_frames or n_frames < 2:
        raise ValueError(f"n_frames must be an integer >= 2, got {n_frames!r}")
    if isinstance(j, bool) or int(j) != j or j < 1:
        raise ValueError(f"j (jitter length in frames) must be an integer >= 1, got {j!r}")
    if isinstance(start, bool) or int(start) != start or not 0 <= start <= n_frames - 2:
        raise ValueError(
            f"start must be an integer in [0, {n_frames - 2}] for a video of {n_frames} frames "
            f"(the last frame is never jittered), got {start!r}"
        )
    if mode not in JITTER_MODES:
        raise ValueError(f"jitter mode must be one of {list(JITTER_MODES)}, got {mode!r}")
    n_frames, j, start = int(n_frames), int(j), int(start)
    # segment id per output frame: -1 for the copied prefix, else 2 * cycle + half (odd = reversed copy)
    index, segment = [np.arange(start, dtype=np.int64)], [np.full(start, -1, dtype=np.int64)]
    filled, cycle = start, 0
    while filled < n_frames:
        first = start if mode == "fixed" else min(start + cycle * j, n_frames - 2)
        chunk = np.arange(first, min(first + j, n_frames - 1), dtype=np.int64)
        for half, part in ((0, chunk), (1, chunk[::-1])):
            index.append(part)
            segment.append(np.full(len(part), 2 * cycle + half, dtype=np.int64))
            filled += len(part)
        cycle += 1
    index = np.concatenate(index)[:n_frames]
    segment = np.concatenate(segment)[:n_frames]
    in_reversed = (segment % 2 == 1) & (segment >= 0)
    mask = in_reversed[:-1] & in_reversed[1:] & (segment[:-1] == segment[1:])
    return index, mask


def negative_jitter(frames, j: int, start: int, mode: str = "fixed") -> tuple[np.ndarray, np.ndarray]:
    """Negative jitter of one episode (see the module docstring and :func:`jitter_indices`).

    ``frames``: ``(T + 1, ...)``. Returns ``(frames_out (T + 1, ...), reversed_mask (T,) bool)``; the
    output has the input's length, shape and dtype. ``j >= 1``; ``0 <= start <= T - 1``; ``mode``: one of
    :data:`JITTER_MODES`.
    """
    frames = _check_episode(frames)
    index, mask = jitter_indices(frames.shape[0], j, start, mode)
    return frames[index], mask


def _n_augmented(n_videos: int, ratio: float) -> int:
    # Round half up so that ratio 0.5 of an odd count keeps the larger half (e.g. 3 of 5).
    return int(np.floor(ratio * n_videos + 0.5))


def choose_sources(n_videos: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Source indices of the augmented videos, sorted, ``(round(ratio * n_videos),)`` int64.

    Every original is used ``floor(n_aug / n_videos)`` times and the remaining ``n_aug mod n_videos``
    originals are drawn at random without replacement; ratio 1.0 uses each original once, 0.5 half of
    them (rounded half up), 2.0 each twice.
    """
    if not np.isfinite(ratio) or ratio < 0:
        raise ValueError(f"ratio (augmented videos per original) must be a finite number >= 0, got {ratio!r}")
    n_aug = _n_augmented(n_videos, ratio)
    if n_videos == 0 or n_aug == 0:
        return np.zeros(0, dtype=np.int64)
    full, extra = divmod(n_aug, n_videos)
    picked = rng.choice(n_videos, size=extra, replace=False) if extra else np.zeros(0, dtype=np.int64)
    sources = np.concatenate([np.repeat(np.arange(n_videos), full), picked]).astype(np.int64)
    return np.sort(sources, kind="stable")


def draw_start(n_frames: int, start_range: tuple[int, int], rng: np.random.Generator) -> int:
    """A start frame uniform in the inclusive ``start_range``, clamped to the valid starts ``[0, T - 1]``.

    Both ends are clamped to ``T - 1 = n_frames - 2``, so a video shorter than the range starts its
    jitter as late as possible (e.g. a 15-frame video with range (10, 25) draws s in [10, 13]; an
    8-frame one always uses s = 6).
    """
    lo, hi = (int(v) for v in start_range)
    last = n_frames - 2
    lo, hi = min(lo, last), min(hi, last)
    return int(rng.integers(lo, hi + 1))


def augment_videos(
    episodes: Sequence,
    mode: str,
    *,
    j: int = 5,
    ratio: float = 1.0,
    start_range: tuple[int, int] = (10, 25),
    jitter_mode: str = "fixed",
    rng: np.random.Generator | int,
) -> list[AugmentedVideo]:
    """Apply the Video Data Generator to a list of episodes.

    ``mode``: ``"reverse"`` or ``"jitter"``. ``ratio``: augmented videos per original (see
    :func:`choose_sources`). ``start_range``: inclusive range of jitter start frames (see
    :func:`draw_start`; default frames 10-25 as in the report). ``jitter_mode``: ``"fixed"`` or
    ``"advancing"`` (:func:`jitter_indices`). ``rng``: a numpy Generator or an int seed;
    the output is a deterministic function of it. Videos come out ordered by source index.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if jitter_mode not in JITTER_MODES:
        raise ValueError(f"jitter_mode must be one of {list(JITTER_MODES)}, got {jitter_mode!r}")
    if isinstance(j, bool) or int(j) != j or j < 1:
        raise ValueError(f"j (jitter length in frames) must be an integer >= 1, got {j!r}")
    if (
        len(start_range) != 2
        or int(start_range[0]) != start_range[0]
        or int(start_range[1]) != start_range[1]
    ):
        raise ValueError(f"start_range must be two integers (lo, hi), got {start_range!r}")
    if not 0 <= start_range[0] <= start_range[1]:
        raise ValueError(f"start_range must satisfy 0 <= lo <= hi, got {tuple(start_range)!r}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    episodes = [_check_episode(ep, f"episodes[{i}]") for i, ep in enumerate(episodes)]

    out: list[AugmentedVideo] = []
    for src in choose_sources(len(episodes), ratio, rng):
        frames = episodes[int(src)]
        if mode == "reverse":
            out.append(
                AugmentedVideo(
                    frames=reverse_video(frames),
                    kind="reverse",
                    source_index=int(src),
                    reversed_mask=np.ones(frames.shape[0] - 1, dtype=bool),
                )
            )
        else:
            s = draw_start(frames.shape[0], start_range, rng)
            jittered, mask = negative_jitter(frames, int(j), s, jitter_mode)
            out.append(
                AugmentedVideo(
                    frames=jittered,
                    kind="jitter",
                    source_index=int(src),
                    reversed_mask=mask,
                    j=int(j),
                    start=s,
                )
            )
    return out
