"""Building the observation buffer of a run from its dataset files (observation videos, VDG, paired data).

Every problem with a file (missing, foreign format, another task, another image size, values or shapes
that do not fit the task: ``rlmu.data.format``) raises ``rlmu.errors.UserError`` naming the file and the
config key, before any training work starts and before the run directory is touched.
"""

from __future__ import annotations

import numpy as np

from rlmu.errors import UserError
from rlmu.seeding import SEED_TAG_OBS_SAMPLER, SEED_TAG_VDG, child_seed
from rlmu.tasks import TaskSpec, get_task
from rlmu.train.replay import ObservationBuffer


def _load_videos(path: str, spec: TaskSpec, image_size: int, what: str):
    from rlmu.data.format import DatasetError, load_video_dataset

    try:
        ds = load_video_dataset(path)
    except DatasetError as exc:
        raise UserError(f"{what}: {exc}") from None
    if get_task(ds.meta["task"]).name != spec.name:  # the loader checked that the task exists
        raise UserError(
            f"{what}: {path}: dataset is for task {ds.meta.get('task')!r}, this run is {spec.name!r}"
        )
    want = "pixels" if spec.pixels else "state"
    if ds.meta.get("obs_kind") != want:
        raise UserError(f"{what}: {path}: dataset holds {ds.meta.get('obs_kind')} frames, task needs {want}")
    if spec.pixels and ds.frames.shape[1:3] != (image_size, image_size):
        raise UserError(
            f"{what}: {path}: frames are {ds.frames.shape[1]}x{ds.frames.shape[2]}, run image_size is {image_size}"
        )
    return ds


def _chw(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) -> contiguous (N, 3, H, W); state frames pass through."""
    if frames.ndim == 4:
        return np.ascontiguousarray(frames.transpose(0, 3, 1, 2))
    return np.ascontiguousarray(frames, dtype=np.float32)


def build_observation_buffer(cfg, spec: TaskSpec) -> ObservationBuffer:
    """Original videos + Video Data Generator output (if ``data.augment``) + paired data (if ``rlv.paired``).

    MEM sub-sequences are drawn from the original videos only (RLMU: motion of real demonstrations).
    """
    d = cfg.data
    originals = _load_videos(d.observations, spec, cfg.image_size, "data.observations")
    if (originals.kind != "original").any():
        raise UserError(
            f"data.observations: {d.observations}: holds augmented videos; give the original videos there "
            "and the augmented file as data.augmented"
        )
    parts = [originals]
    if d.augment != "none":
        if d.augmented:
            aug = _load_videos(d.augmented, spec, cfg.image_size, "data.augmented")
            kinds = set(aug.kind.tolist())
            if kinds != {d.augment}:
                raise UserError(
                    f"data.augmented: {d.augmented}: holds {sorted(kinds)} videos, data.augment is {d.augment!r}"
                )
            if d.augment == "jitter" and set(aug.jitter_j.tolist()) != {d.jitter}:
                raise UserError(
                    f"data.augmented: {d.augmented}: jitter j {sorted(set(aug.jitter_j.tolist()))}, config data.jitter={d.jitter}"
                )
            file_mode = (aug.meta.get("augmentation") or {}).get("jitter_mode", "fixed")
            if d.augment == "jitter" and file_mode != d.jitter_mode:
                raise UserError(
                    f"data.augmented: {d.augmented}: jitter mode {file_mode!r}, config data.jitter_mode={d.jitter_mode!r}"
                )
        else:
            from rlmu.data.generate import augment_dataset

            vdg_seed = child_seed(cfg.seed, SEED_TAG_VDG)
            try:
                aug = augment_dataset(
                    originals,
                    d.augment,
                    j=d.jitter,
                    ratio=d.augment_ratio,
                    start_range=tuple(d.jitter_start),
                    jitter_mode=d.jitter_mode,
                    seed=vdg_seed,
                )
            except ValueError as exc:
                raise UserError(f"data.augment: {exc}") from None
        parts.append(aug)

    frames, obs_idx, next_idx, rewards, terminals = [], [], [], [], []
    offset = 0
    for ds in parts:
        o, n = ds.transition_indices()
        lab = ds.relabelled(spec.name, negative_reward=d.negative_reward, success=d.success)
        frames.append(_chw(ds.frames))
        obs_idx.append(o + offset)
        next_idx.append(n + offset)
        rewards.append(np.asarray(lab.reward, dtype=np.float32))
        terminals.append(np.asarray(lab.terminal, dtype=np.float32))
        offset += len(ds.frames)

    robot = human = None
    if cfg.agent.rlv.paired:
        from rlmu.data.format import DatasetError, load_paired_dataset

        try:
            paired = load_paired_dataset(d.paired)
        except DatasetError as exc:
            raise UserError(f"data.paired: {exc}") from None
        if get_task(paired.meta["task"]).name != spec.name:
            raise UserError(
                f"data.paired: {d.paired}: paired data for task {paired.meta.get('task')!r}, run is {spec.name!r}"
            )
        if paired.robot.shape[1:3] != (cfg.image_size, cfg.image_size):
            raise UserError(
                f"data.paired: {d.paired}: images are {paired.robot.shape[1]} px, run image_size is {cfg.image_size}"
            )
        robot, human = _chw(paired.robot), _chw(paired.human)

    sampler_seed = child_seed(cfg.seed, SEED_TAG_OBS_SAMPLER)
    return ObservationBuffer(
        np.concatenate(frames),
        np.concatenate(obs_idx),
        np.concatenate(next_idx),
        np.concatenate(rewards),
        np.concatenate(terminals),
        episode_starts=originals.episode_starts,
        episode_lengths=originals.episode_lengths,
        paired_robot=robot,
        paired_human=human,
        seed=sampler_seed,
    )
