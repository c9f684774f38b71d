"""The observation-video and paired-data file formats: round trip, validation, atomic writes."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from rlmu.data import format as fmt
from rlmu.data.format import (
    FORMAT_VERSION,
    DatasetError,
    PairedDataset,
    VideoDataset,
    load_dataset,
    load_paired_dataset,
    load_video_dataset,
    save_paired_dataset,
    save_video_dataset,
)


def _pixel_dataset(
    seed: int = 0, n_episodes: int = 4, size: int = 8
) -> tuple[VideoDataset, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    eps = [
        rng.integers(0, 256, (int(rng.integers(2, 9)), size, size, 3), dtype=np.uint8)
        for _ in range(n_episodes)
    ]
    meta = {"task": "push", "domain": "human", "image_size": size, "noise": 0.1, "seed": seed}
    reached = rng.random(n_episodes) < 0.5
    return VideoDataset.from_episodes(eps, meta=meta, reached_goal=reached), eps


def _augmented_dataset() -> VideoDataset:
    rng = np.random.default_rng(1)
    eps = [rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8) for _ in range(3)]
    masks = [np.array([0, 0, 1, 1, 0], bool), np.ones(5, bool), np.zeros(5, bool)]
    return VideoDataset.from_episodes(
        eps,
        meta={"task": "push", "domain": "human", "image_size": 8},
        reached_goal=[False] * 3,
        kind=["jitter", "reverse", "jitter"],
        source_index=[2, 0, 5],
        reversed_masks=masks,
        jitter_j=[2, -1, 2],
        jitter_start=[2, -1, 3],
    )


def _rewrite(src, dst, *, drop=(), meta_update=None, replace=None):
    """Copy an npz archive, dropping arrays, editing metadata or replacing arrays (a forged file)."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    if meta_update is not None:
        meta = json.loads(arrays["meta_json"].tobytes())
        meta.update(meta_update)
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays.update(replace or {})
    np.savez(dst, **arrays)


# ---- round trips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_video_round_trip_is_bit_identical(tmp_path, compress):
    ds, eps = _pixel_dataset()
    path = save_video_dataset(tmp_path / "v.npz", ds, compress=compress)
    back = load_video_dataset(path)
    assert back.meta == ds.meta
    assert back.path == path
    for name, arr in ds.arrays().items():
        got = getattr(back, name)
        assert got.dtype == arr.dtype and got.shape == arr.shape, name
        assert np.array_equal(got, arr), name
    assert len(back.episodes) == len(eps)
    for a, b in zip(back.episodes, eps, strict=True):
        assert a.dtype == np.uint8 and np.array_equal(a, b)
        assert np.shares_memory(a, back.frames)  # views, frames stored once
    # Writing what was read gives the same arrays again.
    save_video_dataset(tmp_path / "v2.npz", back, compress=compress)
    again = load_video_dataset(tmp_path / "v2.npz")
    assert again.meta == ds.meta and np.array_equal(again.frames, ds.frames)


def test_state_dataset_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    eps = [rng.standard_normal((int(t) + 1, 6)).astype(np.float32) for t in (3, 10, 1)]
    ds = VideoDataset.from_episodes(
        eps, meta={"task": "acrobot", "quality": "medium"}, reached_goal=[1, 0, 1]
    )
    assert ds.meta["obs_kind"] == "state" and ds.meta["domain"] == "state"
    back = load_video_dataset(save_video_dataset(tmp_path / "s.npz", ds))
    assert back.frames.dtype == np.float32
    assert all(np.array_equal(a, b) for a, b in zip(back.episodes, eps, strict=True))
    assert back.reached_goal.tolist() == [True, False, True]


def test_augmented_fields_round_trip(tmp_path):
    ds = _augmented_dataset()
    back = load_video_dataset(save_video_dataset(tmp_path / "a.npz", ds))
    assert back.kind.tolist() == ["jitter", "reverse", "jitter"]
    assert back.source_index.tolist() == [2, 0, 5]
    assert back.jitter_j.tolist() == [2, -1, 2] and back.jitter_start.tolist() == [2, -1, 3]
    assert back.episode_reversed_mask(0).tolist() == [False, False, True, True, False]
    assert back.episode_reversed_mask(1).all() and not back.episode_reversed_mask(2).any()


def test_transition_indices_pair_consecutive_frames_within_episodes():
    ds, eps = _pixel_dataset(seed=3, n_episodes=5)
    obs, nxt = ds.transition_indices()
    assert len(obs) == ds.n_transitions == sum(len(e) - 1 for e in eps)
    assert np.array_equal(nxt, obs + 1)
    expected = [(e[t], e[t + 1]) for e in eps for t in range(len(e) - 1)]
    for k, (o, n) in enumerate(expected):
        assert np.array_equal(ds.frames[obs[k]], o) and np.array_equal(ds.frames[nxt[k]], n)
    # No transition crosses an episode boundary: the last frame of an episode is never an ``obs``.
    last_frames = ds.episode_starts + ds.episode_lengths
    assert not np.isin(last_frames, obs).any()


def test_paired_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    robot = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    human = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    state = rng.standard_normal((5, 7)).astype(np.float32)
    ds = PairedDataset.from_arrays(robot, human, state, meta={"task": "push", "domain": "human"})
    back = load_paired_dataset(save_paired_dataset(tmp_path / "p.npz", ds))
    assert back.meta == ds.meta and back.meta["format"] == fmt.PAIRED_FORMAT and back.meta["n_pairs"] == 5
    assert np.array_equal(back.robot, robot) and np.array_equal(back.human, human)
    assert np.array_equal(back.state, state)
    assert isinstance(load_dataset(tmp_path / "p.npz"), PairedDataset)


def test_files_are_readable_without_pickle(tmp_path):
    ds, _ = _pixel_dataset()
    path = save_video_dataset(tmp_path / "v.npz", ds)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(f"{k}.npy" for k in [*ds.arrays(), "meta_json"])
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            assert z[k].dtype != object
        meta = json.loads(z["meta_json"].tobytes().decode("utf-8"))
    assert meta["format"] == fmt.VIDEO_FORMAT and meta["format_version"] == FORMAT_VERSION


# ---- rejection of bad files -----------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path):
    ds, _ = _pixel_dataset()
    return save_video_dataset(tmp_path / "good.npz", ds, compress=False)


def _expect_error(path, *words, loader=load_video_dataset):
    with pytest.raises(DatasetError) as info:
        loader(path)
    msg = str(info.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.999])
def test_truncated_file_is_rejected(tmp_path, good_file, keep):
    data = good_file.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * keep)])
    _expect_error(cut, "truncated")


def test_corrupted_member_is_rejected(tmp_path):
    ds, _ = _pixel_dataset()
    path = save_video_dataset(tmp_path / "c.npz", ds, compress=True)
    data = bytearray(path.read_bytes())
    # Flip bytes in the middle of the compressed frames: zlib or the CRC check must notice.
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=str(path)):
        load_video_dataset(path)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, FORMAT_VERSION - 1, "1"])
def test_other_format_version_is_rejected(tmp_path, good_file, version):
    bad = tmp_path / "ver.npz"
    _rewrite(good_file, bad, meta_update={"format_version": version})
    msg = _expect_error(bad, "format version", repr(version))
    if version == FORMAT_VERSION + 1:
        assert "newer" in msg


def test_other_format_name_is_rejected(tmp_path, good_file):
    bad = tmp_path / "name.npz"
    _rewrite(good_file, bad, meta_update={"format": "something-else"})
    _expect_error(bad, "wrong file type", "something-else")
    # A video file is not a paired-data file, and the other way round.
    _expect_error(good_file, "wrong file type", loader=load_paired_dataset)


def test_foreign_npz_is_rejected(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, x=np.arange(3), frames=np.zeros((2, 4, 4, 3), np.uint8))
    _expect_error(path, "not an rlmu dataset", "meta_json")
    _expect_error(path, "not an rlmu dataset", loader=load_dataset)


def test_non_npz_files_are_rejected(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello, not a zip\n")
    _expect_error(text, "not an .npz")
    npy = tmp_path / "plain.npy"
    np.save(npy, np.arange(4))
    _expect_error(npy, "not an .npz")
    _expect_error(tmp_path / "missing.npz", "no such file")
    _expect_error(tmp_path, "not a regular file")


def test_pickled_object_array_is_rejected(tmp_path, good_file):
    bad = tmp_path / "obj.npz"
    _rewrite(good_file, bad, replace={"kind": np.array([{"a": 1}] * 4, dtype=object)})
    _expect_error(bad, "corrupt or unsupported array data")


@pytest.mark.parametrize("missing", ["frames", "episode_lengths", "reversed_mask", "kind"])
def test_missing_array_is_rejected(tmp_path, good_file, missing):
    bad = tmp_path / "missing.npz"
    _rewrite(good_file, bad, drop=(missing,))
    _expect_error(bad, "missing array", missing)


def test_missing_metadata_key_is_rejected(tmp_path, good_file):
    with np.load(good_file) as z:
        meta = json.loads(z["meta_json"].tobytes())
    del meta["task"]
    bad = tmp_path / "nokey.npz"
    _rewrite(good_file, bad, replace={"meta_json": np.frombuffer(json.dumps(meta).encode(), np.uint8)})
    _expect_error(bad, "metadata lacks", "task")


def test_unreadable_metadata_is_rejected(tmp_path, good_file):
    bad = tmp_path / "badmeta.npz"
    _rewrite(good_file, bad, replace={"meta_json": np.frombuffer(b"{not json", np.uint8)})
    _expect_error(bad, "unreadable metadata")


def test_inconsistent_arrays_are_rejected(tmp_path, good_file):
    with np.load(good_file) as z:
        frames, starts, lengths = z["frames"], z["episode_starts"], z["episode_lengths"]
        mask = z["reversed_mask"]
    cases = {
        "short_frames": ({"frames": frames[:-1]}, "frames has"),
        "bad_starts": ({"episode_starts": starts + 1}, "episode_starts are not contiguous"),
        "short_mask": ({"reversed_mask": mask[:-1]}, "reversed_mask has"),
        "float_frames": ({"frames": frames.astype(np.float32)}, "pixel frames must be"),
        "wrong_lengths_dtype": ({"episode_lengths": lengths.astype(np.int32)}, "episode_lengths"),
        "bad_kind": ({"kind": np.array(["original", "forward", "original", "original"])}, "forward"),
        "per_episode_count": ({"reached_goal": np.zeros(3, bool)}, "reached_goal"),
    }
    for name, (replace, words) in cases.items():
        bad = tmp_path / f"{name}.npz"
        _rewrite(good_file, bad, replace=replace)
        _expect_error(bad, words)
    bad = tmp_path / "counts.npz"
    _rewrite(good_file, bad, meta_update={"n_transitions": 1})
    _expect_error(bad, "metadata counts")
    bad = tmp_path / "size.npz"
    _rewrite(good_file, bad, meta_update={"image_size": 48})
    _expect_error(bad, "image_size 48")


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


def test_from_episodes_rejects_bad_input():
    one = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="at least 2 frames"):
        VideoDataset.from_episodes([one], meta={"task": "push", "domain": "human"}, reached_goal=[False])
    two = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="reversed mask of episode 0"):
        VideoDataset.from_episodes(
            [two],
            meta={"task": "push", "domain": "human"},
            reached_goal=[False],
            reversed_masks=[np.ones(3, bool)],
        )
    with pytest.raises(DatasetError, match="source_index"):
        VideoDataset.from_episodes([two], meta={"task": "push"}, reached_goal=[False], kind=["reverse"])


# ---- atomic writes --------------------------------------------------------------------------------------


def test_failed_write_leaves_existing_file_intact(tmp_path, monkeypatch, good_file):
    before = good_file.read_bytes()
    ds, _ = _pixel_dataset(seed=9)

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 partial data")  # part of an archive, then the writer dies
        raise KeyboardInterrupt

    monkeypatch.setattr(fmt.np, "savez_compressed", crash)
    with pytest.raises(KeyboardInterrupt):
        save_video_dataset(good_file, ds)
    assert good_file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npz"]  # no temporary file left behind
    load_video_dataset(good_file)


def test_invalid_dataset_is_not_written(tmp_path):
    ds, _ = _pixel_dataset()
    ds.reversed_mask = ds.reversed_mask[:-1]
    with pytest.raises(DatasetError, match="reversed_mask"):
        save_video_dataset(tmp_path / "x.npz", ds)
    assert not (tmp_path / "x.npz").exists()


def test_augmented_consistency_rules():
    two = np.zeros((3, 8, 8, 3), np.uint8)
    meta = {"task": "push", "domain": "human", "image_size": 8}
    with pytest.raises(DatasetError, match="never reach the goal"):
        VideoDataset.from_episodes([two], meta=meta, reached_goal=[True], kind=["reverse"], source_index=[0])
    with pytest.raises(DatasetError, match="original video"):
        VideoDataset.from_episodes(
            [two], meta=meta, reached_goal=[True], reversed_masks=[np.array([0, 1], bool)]
        )


def test_relabelled_rewards_align_with_flat_transitions():
    ds, eps = _pixel_dataset(seed=5, n_episodes=6)
    ds.reached_goal[:] = [True, False, True, False, True, True]
    relab = ds.relabelled()
    assert relab.reward.shape == relab.terminal.shape == (ds.n_transitions,)
    ends = ds.transition_offsets[1:] - 1  # flat index of each episode's last transition
    assert np.flatnonzero(relab.terminal).tolist() == ends[ds.reached_goal].tolist()
    assert (relab.reward[ends[ds.reached_goal]] == 10).all()
    assert relab.reward.sum() == 10 * ds.reached_goal.sum()  # push: 0 everywhere else

    aug = _augmented_dataset()
    neg = aug.relabelled(task="push", negative_reward=-0.1)
    assert not neg.terminal.any()
    np.testing.assert_allclose(neg.reward, np.where(aug.reversed_mask, -0.1, 0.0).astype(np.float32))


def test_killed_writer_never_leaves_a_partial_file_under_the_final_name(tmp_path, good_file):
    import signal
    import subprocess
    import sys
    import textwrap

    before = good_file.read_bytes()
    # A writer process that is SIGKILLed in the middle of writing the archive (after some bytes went out).
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        from rlmu.data import format as fmt
        def stuck(f, **arrays):
            f.write(b"PK\\x03\\x04" + bytes(100_000)); f.flush()
            print("writing", flush=True)
            time.sleep(60)
        fmt.np.savez_compressed = stuck
        eps = [np.zeros((5, 8, 8, 3), np.uint8)]
        ds = fmt.VideoDataset.from_episodes(eps, meta={{"task": "push", "domain": "human"}}, reached_goal=[True])
        fmt.save_video_dataset({str(good_file)!r}, ds)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert good_file.read_bytes() == before
    load_video_dataset(good_file)
    # The dead writer's temporary file is hidden (dot-prefixed) and never named like the target.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "good.npz"]
    assert all(name.startswith(".good.npz.") and name.endswith(".tmp") for name in leftovers)
