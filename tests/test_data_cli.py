"""``rlmu data generate|paired|augment|info`` end to end, on small data sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlmu.cli import main
from rlmu.data.format import (
    PairedDataset,
    VideoDataset,
    load_paired_dataset,
    load_video_dataset,
    save_video_dataset,
)
from rlmu.experts.acrobot import ACROBOT_QUALITIES


def _run(capsys, *argv) -> tuple[int, str, str]:
    """Run ``rlmu data ARGV``; a single string argument is split on whitespace (paths have no spaces)."""
    args = argv[0].split() if len(argv) == 1 and isinstance(argv[0], str) else list(map(str, argv))
    code = main(["data", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _synthetic_videos(path, n_episodes=6, length=40, size=8, seed=0):
    rng = np.random.default_rng(seed)
    eps = [rng.integers(0, 256, (length + 1, size, size, 3), dtype=np.uint8) for _ in range(n_episodes)]
    ds = VideoDataset.from_episodes(
        eps, meta={"task": "push", "domain": "human", "image_size": size}, reached_goal=[True] * n_episodes
    )
    save_video_dataset(path, ds)
    return eps


# ---- info -----------------------------------------------------------------------------------------------


def test_info_prints_metadata_and_counts(tmp_path, capsys):
    path = tmp_path / "v.npz"
    _synthetic_videos(path, n_episodes=3, length=5)
    code, out, _ = _run(capsys, "info", path)
    assert code == 0
    assert 'format: "rlmu-observation-videos"' in out
    assert "n_episodes: 3" in out and "n_transitions: 15" in out and "n_frames: 18" in out
    code, out, _ = _run(capsys, "info", path, "--json")
    info = json.loads(out)
    assert info["meta"]["task"] == "push" and info["summary"]["kinds"] == {"original": 3}
    assert info["summary"]["reached_goal"] == 3


@pytest.mark.parametrize("content", [b"", b"plain text", b"PK\x03\x04truncated"])
def test_info_fails_clearly_on_bad_files(tmp_path, capsys, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    code, out, err = _run(capsys, "info", path)
    assert code == 2 and out == ""
    assert err.startswith("rlmu: error: ") and str(path) in err
    assert len(err.strip().splitlines()) == 1


def test_info_on_missing_file(tmp_path, capsys):
    code, _, err = _run(capsys, "info", tmp_path / "nope.npz")
    assert code == 2 and "no such file" in err


# ---- augment (synthetic input: no rendering) ------------------------------------------------------------


def test_augment_jitter_writes_only_augmented_videos(tmp_path, capsys):
    src = tmp_path / "orig.npz"
    eps = _synthetic_videos(src, n_episodes=6, length=40)
    out_path = tmp_path / "jit.npz"
    code, out, _ = _run(
        capsys, f"augment --in {src} --mode jitter --j 3 --ratio 0.5 --seed 1 --out {out_path}"
    )
    assert code == 0 and str(out_path) in out
    aug = load_video_dataset(out_path)
    assert aug.n_episodes == 3  # ratio 0.5 of 6 originals
    assert set(aug.kind.tolist()) == {"jitter"} and not aug.reached_goal.any()
    assert (aug.jitter_j == 3).all() and ((aug.jitter_start >= 10) & (aug.jitter_start <= 25)).all()
    meta = aug.meta["augmentation"]
    assert (
        meta["mode"] == "jitter"
        and meta["j"] == 3
        and meta["ratio"] == 0.5
        and meta["start_range"] == [10, 25]
    )
    assert len(meta["source"]["sha256"]) == 64 and meta["source"]["n_episodes"] == 6
    for i in range(aug.n_episodes):
        video, source = aug.episode(i), eps[aug.source_index[i]]
        s = int(aug.jitter_start[i])
        assert len(video) == len(source)  # jitter keeps the original length
        assert np.array_equal(video[:s], source[:s])  # frames before the start are copied unchanged
        mask = aug.episode_reversed_mask(i)
        assert not mask[: s - 1].any() and mask.any()


def test_augment_reverse(tmp_path, capsys):
    src = tmp_path / "orig.npz"
    eps = _synthetic_videos(src, n_episodes=4, length=12)
    out_path = tmp_path / "rev.npz"
    code, _, _ = _run(capsys, "augment", "--in", src, "--mode", "reverse", "--out", out_path)
    assert code == 0
    aug = load_video_dataset(out_path)
    assert aug.n_episodes == 4 and set(aug.kind.tolist()) == {"reverse"}
    for i in range(aug.n_episodes):
        assert np.array_equal(aug.episode(i), eps[aug.source_index[i]][::-1])
        assert aug.episode_reversed_mask(i).all()
    assert (aug.jitter_j == -1).all()


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--j", "0"], "--j must be >= 1"),
        (["--ratio", "-1"], "--ratio must be > 0"),
        (["--start-min", "30", "--start-max", "20"], "--start-min"),
    ],
)
def test_augment_rejects_bad_numbers(tmp_path, capsys, extra, words):
    src = tmp_path / "orig.npz"
    _synthetic_videos(src, n_episodes=2, length=30)
    code, _, err = _run(
        capsys, "augment", "--in", src, "--mode", "jitter", "--out", tmp_path / "o.npz", *extra
    )
    assert code == 2 and words in err
    assert not (tmp_path / "o.npz").exists()


def test_augment_rejects_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_text("nope")
    code, _, err = _run(capsys, "augment", "--in", bad, "--mode", "reverse", "--out", tmp_path / "o.npz")
    assert code == 2 and str(bad) in err


# ---- generate / paired (real environments and demonstrators) --------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--task", "pusher"], "unknown task"),
        (["--task", "push", "--domain", "cartoon"], "unknown domain"),
        (["--task", "push", "--transitions", "0"], "--transitions must be >= 1"),
        (["--task", "push", "--noise", "-0.5"], "--noise must be >= 0"),
        (["--task", "push", "--episodes", "0"], "--episodes must be >= 1"),
        # An image style is not a state domain (acrobot has robot and human state domains).
        (["--task", "acrobot", "--domain", "human_dark"], "unknown domain 'human_dark' for task 'acrobot'"),
        (["--task", "push", "--quality", "high"], "quality applies to the acrobot"),
        (["--task", "acrobot", "--quality", "superb"], "unknown acrobot quality"),
        (["--task", "acrobot", "--quality", "low", "--noise", "0.3"], "either quality or noise"),
    ],
)
def test_generate_rejects_bad_input(tmp_path, capsys, argv, words):
    code, _, err = _run(capsys, "generate", *argv, "--out", tmp_path / "o.npz")
    assert code == 2, err
    assert err.startswith("rlmu: error: ") and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.npz").exists()


def test_generate_acrobot_states_is_seeded(tmp_path, capsys):
    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    for path, seed in ((a, 0), (b, 0), (c, 1)):
        code, _, _ = _run(
            capsys, f"generate --task acrobot --quality high --transitions 150 --seed {seed} --out {path}"
        )
        assert code == 0
    da, db, dc = (load_video_dataset(p) for p in (a, b, c))
    # Acrobot videos are generated in the human state domain by default, as the image tasks' are.
    assert da.meta["obs_kind"] == "state" and da.meta["domain"] == "human" and da.meta["quality"] == "high"
    assert da.meta["noise"] == ACROBOT_QUALITIES["high"] and da.meta["image_size"] is None
    assert da.frames.dtype == np.float32 and da.frames.shape[1] == 6
    assert da.n_transitions >= 150 and da.n_transitions - int(da.episode_lengths[-1]) < 150  # whole episodes
    assert np.array_equal(da.frames, db.frames) and not np.array_equal(da.frames[:50], dc.frames[:50])
    # An episode that ends early ended at the goal: relabelling needs that flag to be right.
    early = da.episode_lengths < 100
    assert da.reached_goal[early].all()
    relab = da.relabelled()
    assert relab.reward.shape == relab.terminal.shape == (da.n_transitions,)
    assert int(relab.terminal.sum()) == int(da.reached_goal.sum())


def test_generate_push_small_then_load(tmp_path, capsys):
    path = tmp_path / "push.npz"
    code, out, err = _run(
        capsys, f"generate --task push --domain human --transitions 250 --seed 0 --image-size 48 --out {path}"
    )
    assert code == 0, err
    assert "generate push/human" in err  # plain progress lines when stderr is not a terminal
    ds = load_video_dataset(path)
    assert ds.meta["task"] == "push" and ds.meta["domain"] == "human" and ds.meta["image_size"] == 48
    assert ds.meta["noise"] == 0.0 and ds.meta["seed"] == 0 and ds.meta["generator_version"]
    assert ds.frames.shape[1:] == (48, 48, 3) and ds.frames.dtype == np.uint8
    assert ds.n_episodes == 3 and (ds.episode_lengths == 100).all()  # 100-step episodes, whole ones
    assert ds.frames.std() > 5  # real images, not blank frames
    # Consecutive frames differ (the scene moves) but stay similar (same scene).
    diffs = np.abs(np.diff(ds.episode(0).astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    assert diffs.max() > 0 and diffs.mean() < 40
    assert ds.reached_goal.any()  # the noiseless scripted pusher succeeds at least once
    assert ds.meta["success_rate"] == ds.reached_goal.mean()
    obs, nxt = ds.transition_indices()
    assert len(obs) == 300

    code, out, _ = _run(capsys, "info", path)
    assert code == 0 and "n_transitions: 300" in out


def test_generate_episodes_option(tmp_path, capsys):
    path = tmp_path / "two.npz"
    code, _, err = _run(capsys, "generate", "--task", "acrobot", "--episodes", 2, "--out", path)
    assert code == 0, err
    assert load_video_dataset(path).n_episodes == 2


def test_paired_push_small(tmp_path, capsys):
    path = tmp_path / "paired.npz"
    code, out, err = _run(capsys, f"paired --task push --n 12 --per-episode 6 --seed 0 --out {path}")
    assert code == 0, err
    ds = load_paired_dataset(path)
    assert isinstance(ds, PairedDataset) and len(ds) == 12
    assert ds.robot.shape == ds.human.shape == (12, 48, 48, 3)
    assert ds.meta["domains"] == {"robot": "robot", "human": "human"}
    # Same states, different looks: the two domains differ on every pair.
    diff = np.abs(ds.robot.astype(np.int16) - ds.human.astype(np.int16)).mean(axis=(1, 2, 3))
    assert (diff > 5).all()
    assert len(np.unique(ds.state, axis=0)) > 1
    code, out, _ = _run(capsys, "info", path)
    assert code == 0 and "n_pairs: 12" in out


def test_paired_rejects_state_task(tmp_path, capsys):
    code, _, err = _run(capsys, "paired", "--task", "acrobot", "--out", tmp_path / "p.npz")
    assert code == 2 and "image tasks only" in err


def test_generate_drawer_other_domain_and_size(tmp_path, capsys):
    path = tmp_path / "drawer.npz"
    code, _, err = _run(
        capsys,
        f"generate --task drawer --domain human_dark --episodes 1 --image-size 32 --noise 0.1 --out {path}",
    )
    assert code == 0, err
    ds = load_video_dataset(path)
    assert ds.meta["domain"] == "human_dark" and ds.meta["noise"] == 0.1 and ds.meta["image_size"] == 32
    assert ds.frames.shape == (201, 32, 32, 3) and ds.episode_lengths.tolist() == [200]


def test_generate_push_is_seeded(tmp_path, capsys):
    paths = [tmp_path / f"{name}.npz" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (3, 3, 4), strict=True):
        code, _, err = _run(
            capsys, f"generate --task push --episodes 1 --noise 0.3 --seed {seed} --out {path}"
        )
        assert code == 0, err
    a, b, c = (load_video_dataset(p).frames for p in paths)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# ---- info on files that do not fit their task -----------------------------------------------------------


def _acrobot_file(tmp_path, capsys):
    path = tmp_path / "acrobot.npz"
    code, _, err = _run(capsys, f"generate --task acrobot --quality high --episodes 2 --seed 0 --out {path}")
    assert code == 0, err
    return path


def _replace_frames(src, dst, frames):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["frames"] = frames
    np.savez(dst, **arrays)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("width7", "state frames are 7-D, task 'acrobot' has 6-D states"),
        ("width1", "state frames are 1-D, task 'acrobot' has 6-D states"),
        ("nan", "nan is not finite"),
        ("inf", "inf is not finite"),
        ("huge", "outside the task's observation range"),
    ],
)
def test_info_rejects_acrobot_data_that_does_not_fit_the_task(tmp_path, capsys, change, words):
    good = _acrobot_file(tmp_path, capsys)
    with np.load(good) as z:
        frames = z["frames"].copy()
    if change == "width7":
        frames = np.column_stack([frames, np.zeros(len(frames), np.float32)])
    elif change == "width1":
        frames = frames[:, :1].copy()
    else:
        frames[len(frames) - 1, 5] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[change]
    bad = tmp_path / f"{change}.npz"
    _replace_frames(good, bad, frames)
    code, out, err = _run(capsys, "info", bad)
    assert code == 2 and out == "", err
    assert err.startswith(f"rlmu: error: {bad}: ") and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if change in ("nan", "inf", "huge"):
        assert f"row {len(frames) - 1} (episode 1, frame" in err
