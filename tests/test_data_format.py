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


def _acrobot_states(rng, n: int) -> np.ndarray:
    """``(n, 6)`` float32 states inside Acrobot's observation bounds (cos/sin of two angles, velocities)."""
    th = rng.uniform(-np.pi, np.pi, (n, 2))
    vel = rng.uniform(-1, 1, (n, 2)) * [4 * np.pi, 9 * np.pi] * 0.99
    return np.column_stack(
        [np.cos(th[:, 0]), np.sin(th[:, 0]), np.cos(th[:, 1]), np.sin(th[:, 1]), vel]
    ).astype(np.float32)


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
    eps = [_acrobot_states(rng, int(t) + 1) for t in (3, 10, 1)]
    ds = VideoDataset.from_episodes(
        eps, meta={"task": "acrobot", "quality": "medium"}, reached_goal=[1, 0, 1]
    )
    # Without a domain a state dataset holds the state itself: the identity domain "robot".
    assert ds.meta["obs_kind"] == "state" and ds.meta["domain"] == "robot"
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
    _expect_error(bad, "pickled Python objects", "'kind'")


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


# ---- values, task shapes, headers and members ----------------------------------------------------------


@pytest.fixture
def state_file(tmp_path):
    rng = np.random.default_rng(7)
    eps = [_acrobot_states(rng, t + 1) for t in (5, 9, 4)]
    ds = VideoDataset.from_episodes(eps, meta={"task": "acrobot", "domain": "state"}, reached_goal=[0, 1, 0])
    return save_video_dataset(tmp_path / "acrobot.npz", ds, compress=False)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (np.nan, "nan is not finite"),
        (np.inf, "inf is not finite"),
        (-np.inf, "-inf is not finite"),
        (1e30, "outside the task's observation range"),
        (1.5, "outside the task's observation range [-1.0, 1.0]"),
    ],
)
def test_state_values_are_checked_naming_episode_and_index(tmp_path, state_file, value, words):
    with np.load(state_file) as z:
        frames = z["frames"].copy()
    frames[9, 0] = value  # episode 1 starts at row 6: its frame 3
    bad = tmp_path / "bad.npz"
    _rewrite(state_file, bad, replace={"frames": frames})
    _expect_error(bad, words, "row 9", "episode 1, frame 3", "column 0", "1 bad row")
    # The same check guards data made in memory, before it is ever written.
    eps = [frames[:6], frames[6:16], frames[16:]]
    with pytest.raises(DatasetError, match="episode 1, frame 3"):
        VideoDataset.from_episodes(eps, meta={"task": "acrobot"}, reached_goal=[0, 0, 0])


def test_paired_state_values_must_be_finite(tmp_path):
    rng = np.random.default_rng(4)
    robot = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    state = rng.standard_normal((5, 10)).astype(np.float32)
    good = save_paired_dataset(
        tmp_path / "p.npz",
        PairedDataset.from_arrays(robot, robot, state, meta={"task": "push", "domain": "human"}),
    )
    state[2, 4] = np.nan
    bad = tmp_path / "nan.npz"
    _rewrite(good, bad, replace={"state": state})
    _expect_error(bad, "array 'state' row 2, column 4: nan is not finite", loader=load_paired_dataset)
    acro = tmp_path / "acro.npz"
    _rewrite(good, acro, meta_update={"task": "acrobot"})
    _expect_error(acro, "paired data is for image tasks", loader=load_paired_dataset)


@pytest.mark.parametrize("width", [1, 5, 7])
def test_state_width_must_be_the_tasks(tmp_path, state_file, width):
    with np.load(state_file) as z:
        frames = z["frames"]
    wide = np.zeros((len(frames), width), np.float32)
    wide[:, : min(width, 6)] = frames[:, : min(width, 6)]
    bad = tmp_path / f"w{width}.npz"
    _rewrite(state_file, bad, replace={"frames": wide})
    _expect_error(bad, f"state frames are {width}-D", "task 'acrobot' has 6-D states")
    _expect_error(bad, f"{width}-D", loader=load_dataset)


def test_frames_must_fit_the_task(tmp_path, state_file, good_file):
    with np.load(state_file) as z:
        frames = z["frames"]
    cases = {
        "float64": ({"frames": frames.astype(np.float64)}, {}, "state frames must be (N, D) float32"),
        "pixels_for_acrobot": ({}, {"obs_kind": "pixels"}, "task 'acrobot' has state observations"),
        "unknown_task": ({}, {"task": "pong"}, "unknown task 'pong'"),
        "task_not_a_name": ({}, {"task": 3}, "metadata task must be a task name"),
        "counts_not_ints": ({}, {"n_episodes": 3.0}, "must be integers"),
    }
    for name, (replace, meta, words) in cases.items():
        bad = tmp_path / f"{name}.npz"
        _rewrite(state_file, bad, replace=replace, meta_update=meta)
        _expect_error(bad, words)
    with np.load(good_file) as z:
        pixels = z["frames"]
    bad = tmp_path / "pixels_u16.npz"
    _rewrite(good_file, bad, replace={"frames": pixels.astype(np.uint16)})
    _expect_error(bad, "pixel frames must be (N, H, W, 3) uint8")
    bad = tmp_path / "state_for_push.npz"
    _rewrite(good_file, bad, meta_update={"obs_kind": "state"})
    _expect_error(bad, "task 'push' has pixels observations")


def _npy_bytes(header: dict, data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + data


def _with_member(src, dst, name: str, payload: bytes, *, compress=zipfile.ZIP_STORED, drop=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compress) as zout:
        for info in zin.infolist():
            if info.filename != name and info.filename not in drop:
                zout.writestr(info.filename, zin.read(info))
        zout.writestr(name, payload)


def test_a_header_declaring_a_huge_array_is_refused_before_reading(tmp_path, state_file, monkeypatch):
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**12, 6)}
    bad = tmp_path / "huge.npz"
    _with_member(state_file, bad, "frames.npy", _npy_bytes(header, bytes(4096)))
    read = []
    real_read = fmt._read_array
    monkeypatch.setattr(
        fmt, "_read_array", lambda zf, h, path, name: read.append(name) or real_read(zf, h, path, name)
    )
    _expect_error(bad, "'frames'", "(1000000000000, 6)", "truncated or corrupt")
    assert read == ["meta_json"]  # no array data was read


def test_arrays_that_do_not_fit_in_memory_are_refused(state_file, monkeypatch):
    monkeypatch.setattr(fmt, "available_memory_bytes", lambda: 100)
    msg = _expect_error(state_file, "need", "this machine has 100 bytes available")
    assert "'frames'" in msg


def test_unknown_members_are_refused_without_reading_them(tmp_path, state_file, monkeypatch):
    bad = tmp_path / "extra.npz"
    header = {"descr": "|u1", "fortran_order": False, "shape": (50 * 2**20,)}
    _with_member(
        state_file, bad, "extra.npy", _npy_bytes(header, bytes(50 * 2**20)), compress=zipfile.ZIP_DEFLATED
    )
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *a, **k):
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real_open(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    _expect_error(bad, "unknown array(s) ['extra']", "not read")
    assert set(opened) == {"meta_json.npy"}


def test_members_that_are_not_arrays_or_appear_twice_are_refused(tmp_path, state_file):
    notes = tmp_path / "notes.npz"
    _with_member(state_file, notes, "README.txt", b"hello")
    _expect_error(notes, "'README.txt' is not an .npy array")
    twice = tmp_path / "twice.npz"
    with zipfile.ZipFile(state_file) as zin, zipfile.ZipFile(twice, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        with pytest.warns(UserWarning, match="Duplicate name"):
            zout.writestr("jitter_j.npy", zin.read("jitter_j.npy"))
    _expect_error(twice, "holds array 'jitter_j' twice")


def test_damaged_headers_and_data_are_refused(tmp_path, state_file):
    with zipfile.ZipFile(state_file) as z:
        raw = z.read("episode_lengths.npy")
    cut = tmp_path / "cut_header.npz"
    _with_member(state_file, cut, "episode_lengths.npy", raw[:20])
    _expect_error(cut, "'episode_lengths': corrupt .npy header")
    short = tmp_path / "short_data.npz"
    _with_member(state_file, short, "episode_lengths.npy", raw[:-8])
    _expect_error(short, "'episode_lengths'", "holds", "truncated or corrupt")
    # One flipped byte in the data of an uncompressed member: the zip CRC catches it.
    data = bytearray(state_file.read_bytes())
    with zipfile.ZipFile(state_file) as z:
        info = z.getinfo("frames.npy")
    data[info.header_offset + 30 + len("frames.npy") + 200] ^= 0xFF
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    _expect_error(flipped, "truncated or corrupt archive", "'frames'")


def test_deeply_nested_or_huge_metadata_is_refused(tmp_path, state_file):
    deep = tmp_path / "deep.npz"
    _rewrite(
        state_file, deep, replace={"meta_json": np.frombuffer(b"[" * 100_000 + b"]" * 100_000, np.uint8)}
    )
    _expect_error(deep, "unreadable metadata")
    big = tmp_path / "big.npz"
    _rewrite(state_file, big, replace={"meta_json": np.zeros(2 * 2**20, np.uint8)})
    _expect_error(big, "unreadable metadata", "at most 1 MiB")
