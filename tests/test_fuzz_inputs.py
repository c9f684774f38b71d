"""Malformed inputs end in one error line naming the file or field, and never in a result.

Every case runs the ``rlmu`` command line in-process (``rlmu.cli.main``) on a study folder whose
``runs/`` already holds runs, and checks: exit status 2 (or, where a good previous checkpoint exists, a
correct resume), no traceback, one ``rlmu: error:`` line naming the file or field, nothing under
``runs/`` changed, and no ``run.json`` with status ``completed`` or ``diverged`` made from bad input.

Inputs: run config files, ``key=value`` overrides, observation-video and paired-data files (through
``rlmu data info`` and ``rlmu train``) and checkpoints (through ``rlmu train`` resuming a run).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rlmu.cli import main

# One tiny Acrobot SAC run: the command every checkpoint case resumes.
RUN_ARGS = [
    "seed=1",
    "task=acrobot",
    "variant=sac",
    "epochs=2",
    "steps_per_epoch=50",
    "random_steps=20",
    "eval_episodes=1",
    "checkpoint_every=1",
    "agent.sac.batch_size=16",
    "agent.sac.hidden=[32,32]",
]
TINY = RUN_ARGS[3:]  # budgets without task, variant and seed


# ----------------------------------------------------------------------------------------------------
# The study folder and what must hold after every case


def _snapshot(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = b"-> " + str(p.readlink()).encode()
        else:
            out[str(p.relative_to(root))] = None if p.is_dir() else p.read_bytes()
    return out


def _statuses(root: Path) -> dict[str, str]:
    out = {}
    for p in root.rglob("run.json"):
        try:
            out[str(p.relative_to(root))] = json.loads(p.read_text()).get("status")
        except (OSError, ValueError):
            out[str(p.relative_to(root))] = "<unreadable>"
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A completed tiny run (its ``checkpoints/`` hold the epoch-2 ``latest.pt`` and epoch-1 ``previous.pt``)."""
    d = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "--no-progress", "--run-dir", str(d), *RUN_ARGS]) == 0
    assert json.loads((d / "run.json").read_text())["status"] == "completed"
    return d


@pytest.fixture
def study(tmp_path, finished_run) -> Path:
    """A study folder whose ``runs/`` holds a completed run (the one every case must leave alone)."""
    root = tmp_path / "study"
    shutil.copytree(finished_run, root / "runs" / "acrobot" / "sac" / "seed_0")
    return root


class Guard:
    """Checks that a case changed nothing under ``runs/`` and produced no result."""

    def __init__(self, root: Path):
        self.root = root
        self.before = _snapshot(root / "runs")
        self.statuses = _statuses(root / "runs")

    def unchanged(self) -> None:
        assert _snapshot(self.root / "runs") == self.before, "something under runs/ changed"

    def no_result(self) -> None:
        for key, status in _statuses(self.root / "runs").items():
            if self.statuses.get(key) != status:
                assert status not in ("completed", "diverged"), f"{key}: bad input became a {status} run"


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _rejected(rc: int, out: str, err: str, *names: str, only_line: bool = True) -> str:
    """Exit 2, no traceback, the last stderr line is the one error line and names ``names``."""
    assert "Traceback" not in out + err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, f"exit {rc}: {err}"
    assert lines and lines[-1].startswith("rlmu: error: "), err
    if only_line:
        assert len(lines) == 1, err
    for name in names:
        assert name in lines[-1], lines[-1]
    return lines[-1]


def _wired(name: str) -> bool:
    """Whether ``rlmu train`` (its command line or the trainer) calls the library function ``name``."""
    import rlmu.train.cli
    import rlmu.train.trainer

    return any(name in inspect.getsource(m) for m in (rlmu.train.cli, rlmu.train.trainer))


# ----------------------------------------------------------------------------------------------------
# Run config files


def _nested(depth: int) -> bytes:
    return b"task: acrobot\nvariant: sac\nagent: " + b"{a: " * depth + b"1" + b"}" * depth + b"\n"


CONFIG_FILES: dict[str, tuple[bytes, str]] = {
    "latin1": ("task: acrobot\nvariant: sac\nstudy: caf\u00e9\n".encode("latin-1"), "not UTF-8"),
    "utf16_le_bom": ("task: acrobot\nvariant: sac\n".encode("utf-16"), "UTF-16"),
    "utf16_be_bom": (b"\xfe\xff" + "task: acrobot\n".encode("utf-16-be"), "UTF-16"),
    "utf16_no_bom": ("task: acrobot\n".encode("utf-16-le"), "binary"),
    "utf32": ("task: acrobot\n".encode("utf-32"), "UTF-16"),  # its BOM starts like UTF-16's
    "random_bytes": (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "config file"),
    "elf": (b"\x7fELF\x02\x01\x01\x00" + bytes(64), "binary"),
    "nul_byte": (b"task: acrobot\x00\nvariant: sac\n", "binary"),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(32), "config file"),
    "deep_lists": (b"task: acrobot\nvariant: sac\nseed: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested"),
    "deep_maps": (_nested(60), "nested more than"),
    "deep_maps_recursion": (_nested(3000), "nested"),
    "top_level_list": (b"- task: acrobot\n- variant: sac\n", "must hold a mapping"),
    "top_level_int": (b"42\n", "must hold a mapping"),
    "top_level_str": (b"just some words\n", "must hold a mapping"),
    "unclosed_bracket": (b"task: acrobot\nvariant: sac\nseed: [1, 2\n", "not valid YAML"),
    "tab_indent": (b"task: acrobot\nagent:\n\tsac: 1\n", "not valid YAML"),
    "python_tag": (
        b"task: acrobot\nvariant: sac\nseed: !!python/object/apply:os.system [ls]\n",
        "not valid YAML",
    ),
    "unhashable_key": (b"task: acrobot\nvariant: sac\n? [a, b]\n: 1\n", "not valid YAML"),
    "undefined_alias": (b"task: acrobot\nvariant: sac\nseed: *nothing\n", "not valid YAML"),
    "oversized": (b"task: acrobot\nvariant: sac\n" + b"# padding\n" * 120_000, "larger than"),
    "empty": (b"", "task"),
    "only_comment": (b"# nothing here\n", "task"),
    "unknown_key": (b"task: acrobot\nvariant: sac\nlearning_rate: 3\n", "learning_rate"),
    "epochs_word": (b"task: acrobot\nvariant: sac\nepochs: ten\n", "epochs"),
    "seed_2_70": (b"task: acrobot\nvariant: sac\nseed: 1180591620717411303424\n", "seed"),
    "seed_negative": (b"task: acrobot\nvariant: sac\nseed: -3\n", "seed"),
    "lr_inf": (b"task: acrobot\nvariant: sac\nagent: {sac: {lr: .inf}}\n", "agent.sac.lr"),
    "lr_nan": (b"task: acrobot\nvariant: sac\nagent: {sac: {lr: .nan}}\n", "agent.sac.lr"),
    "gamma_1e400": (b"task: acrobot\nvariant: sac\nagent: {sac: {gamma: 1e400}}\n", "agent.sac.gamma"),
    "hidden_1e11": (b"task: acrobot\nvariant: sac\nagent: {sac: {hidden: [1e11]}}\n", "agent.sac.hidden"),
    "section_as_list": (b"task: acrobot\nvariant: sac\nagent: [1, 2]\n", "agent"),
    "task_number": (b"task: 3\nvariant: sac\n", "task"),
    "variant_null": (b"task: acrobot\nvariant:\n", "variant"),
    "int_key": (b"task: acrobot\nvariant: sac\n1: 2\n", "config: 1: Keys should be strings"),
    "alias_bomb": (
        b"task: acrobot\nvariant: sac\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"agent: {sac: {hidden: [*d, *d, *d, *d, *d, *d, *d, *d]}}\n",
        "config",
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_FILES))
def test_bad_config_file(study, capsys, case):
    content, words = CONFIG_FILES[case]
    path = study / "run.yaml"
    path.write_bytes(content)
    guard = Guard(study)
    run_dir = study / "runs" / "acrobot" / "sac" / "seed_9"
    rc, out, err = _run(capsys, ["train", "--no-progress", "--config", path, "--run-dir", run_dir])
    line = _rejected(rc, out, err, words)
    if case not in ("empty", "only_comment") and not line.startswith("rlmu: error: config: "):
        assert str(path) in line  # a problem with the file itself names the file
    assert not run_dir.exists()
    guard.unchanged()
    guard.no_result()


def test_config_that_is_a_directory_or_missing(study, capsys):
    guard = Guard(study)
    for path, words in ((study, "is a directory"), (study / "gone.yaml", "No such file")):
        rc, out, err = _run(capsys, ["train", "--config", path, "--run-dir", study / "runs" / "x"])
        _rejected(rc, out, err, str(path), words)
    guard.unchanged()


# ----------------------------------------------------------------------------------------------------
# key=value overrides

OVERRIDES: dict[str, tuple[list[str], str]] = {
    "no_equals": (["seed"], "key=value"),
    "empty_key": (["=1"], "key=value"),
    "leading_dot": ([".seed=1"], "key=value"),
    "trailing_dot": (["seed.=1"], "key=value"),
    "double_dot": (["agent..lr=1"], "key=value"),
    "seed_word": (["seed=abc"], "seed"),
    "seed_negative": (["seed=-1"], "seed"),
    "seed_fraction": (["seed=1.5"], "seed"),
    "seed_2_64": (["seed=18446744073709551616"], "seed"),
    "seed_2_63": (["seed=9223372036854775808"], "seed"),
    "seed_400_digits": (["seed=" + "7" * 400], "seed"),
    "seed_hex_huge": (["seed=0x1000000000000000000"], "seed"),
    "seed_list": (["seed=[1, 2]"], "seed"),
    "seed_deep": (["seed=" + "[" * 3000 + "]" * 3000], "seed"),
    "seed_deep_40": (["seed=" + "[" * 40 + "]" * 40], "seed"),
    "seed_yaml_error": (["seed={a: [1"], "seed"),
    "seed_reserved_char": (["seed=@home"], "seed"),
    "seed_python_tag": (["seed=!!python/object/apply:os.system [ls]"], "seed"),
    "epochs_zero": (["epochs=0"], "epochs"),
    "epochs_negative": (["epochs=-5"], "epochs"),
    "epochs_1e30": (["epochs=1e30"], "epochs"),
    "epochs_list": (["epochs=[1]"], "epochs"),
    "steps_mapping": (["steps_per_epoch={a: 1}"], "steps_per_epoch"),
    "total_steps_overflow": (["epochs=4611686018427387904", "steps_per_epoch=4"], "epochs x steps_per_epoch"),
    "lr_inf": (["agent.sac.lr=inf"], "agent.sac.lr"),
    "lr_minus_inf": (["agent.sac.lr=-inf"], "agent.sac.lr"),
    "lr_nan": (["agent.sac.lr=nan"], "agent.sac.lr"),
    "lr_dot_nan": (["agent.sac.lr=.nan"], "agent.sac.lr"),
    "lr_1e400": (["agent.sac.lr=1e400"], "agent.sac.lr"),
    "lr_zero": (["agent.sac.lr=0"], "agent.sac.lr"),
    "lr_word": (["agent.sac.lr=fast"], "agent.sac.lr"),
    "gamma_2": (["agent.sac.gamma=2"], "agent.sac.gamma"),
    "tau_negative": (["agent.sac.tau=-1"], "agent.sac.tau"),
    "log_std_inf": (["agent.sac.log_std_min=-inf"], "agent.sac.log_std_min"),
    "hidden_empty": (["agent.sac.hidden=[]"], "agent.sac.hidden"),
    "hidden_zero": (["agent.sac.hidden=[0]"], "agent.sac.hidden"),
    "hidden_negative": (["agent.sac.hidden=[-1, 4]"], "agent.sac.hidden"),
    "hidden_1e11_text": (["agent.sac.hidden=[1e11]"], "agent.sac.hidden"),
    "hidden_2_70": (["agent.sac.hidden=[1180591620717411303424]"], "agent.sac.hidden"),
    "hidden_word": (["agent.sac.hidden=wide"], "agent.sac.hidden"),
    "batch_zero": (["agent.sac.batch_size=0"], "agent.sac.batch_size"),
    "section_scalar": (["agent.sac=3"], "agent.sac"),
    "scalar_then_section": (["agent.sac.lr=1", "agent.sac.lr.x=2"], "agent.sac.lr"),
    "field_as_section": (["agent.sac.lr.x=1"], "agent.sac.lr"),
    "unknown_key": (["typo_key=1"], "typo_key"),
    "unknown_nested_key": (["agent.sac.colour=red"], "agent.sac.colour"),
    "task_unknown": (["task=pong"], "task"),
    "task_empty": (["task="], "task"),
    "variant_empty": (["variant="], "variant"),
    "variant_unknown": (["variant=rlv_jiter5"], "variant"),
    "rlv_without_data": (["variant=rlv_nopair"], "data.observations"),
    "device_tpu": (["device=tpu"], "device"),
    "device_cuda_x": (["device=cuda:x"], "device"),
    "image_size_8": (["image_size=8"], "image_size"),
    "image_size_1e9": (["image_size=1000000000"], "image_size"),
    "study_dotdot": (["study=../x"], "study"),
    "study_slash": (["study=a/b"], "study"),
    "augment_sideways": (["data.augment=sideways"], "data.augment"),
    "jitter_start_reversed": (["data.jitter_start=[5, 1]"], "data.jitter_start"),
    "negative_reward_positive": (["data.negative_reward=1"], "data.negative_reward"),
    "replay_zero": (["replay_size=0"], "replay_size"),
    "threads_negative": (["torch_threads=-1"], "torch_threads"),
    "checkpoint_every_zero": (["checkpoint_every=0"], "checkpoint_every"),
    "eval_episodes_zero": (["eval_episodes=0"], "eval_episodes"),
    "random_steps_negative": (["random_steps=-1"], "random_steps"),
    "virl_demo_without_virl": (["virl.demo=x.npz"], "virl"),
}


@pytest.mark.parametrize("case", sorted(OVERRIDES))
def test_bad_override(study, capsys, case):
    extra, words = OVERRIDES[case]
    guard = Guard(study)
    run_dir = study / "runs" / "acrobot" / "sac" / "seed_9"
    argv = ["train", "--no-progress", "--run-dir", run_dir, "task=acrobot", "variant=sac", *TINY, *extra]
    rc, out, err = _run(capsys, argv)
    _rejected(rc, out, err, words)
    assert not run_dir.exists()
    guard.unchanged()
    guard.no_result()


# Sizes and devices are a question about the machine (``rlmu.train.config.check_machine``), asked by
# ``rlmu train`` before any work. Only sizes that fail at once if they are ever allocated are used.
MACHINE: dict[str, tuple[list[str], str]] = {
    "hidden_1e11": (["agent.sac.hidden=[100000000000]"], "agent.sac.hidden"),
    "batch_1e12": (["agent.sac.batch_size=1000000000000"], "agent.sac.batch_size"),
    "replay_1e13": (
        ["replay_size=10000000000000", "epochs=10000000", "steps_per_epoch=10000000"],
        "replay_size",
    ),
    "run_length_1e13": (
        ["replay_size=100000000000000", "epochs=10000000", "steps_per_epoch=1000000"],
        "epochs x steps_per_epoch",
    ),
    "epochs_1e12": (["epochs=1000000000000", "replay_size=100"], "epochs"),
    "device_cuda_9": (["device=cuda:9"], "device"),
    "device_mps": (["device=mps"], "device"),
}


@pytest.mark.parametrize("case", sorted(MACHINE))
def test_sizes_and_devices_this_machine_cannot_run(study, capsys, case):
    if not _wired("check_machine"):
        pytest.xfail(
            "rlmu train does not call rlmu.train.config.check_machine yet (not run: it would allocate)"
        )
    extra, words = MACHINE[case]
    guard = Guard(study)
    run_dir = study / "runs" / "acrobot" / "sac" / "seed_9"
    argv = ["train", "--no-progress", "--run-dir", run_dir, "task=acrobot", "variant=sac", *TINY[:1], *extra]
    rc, out, err = _run(capsys, argv)
    _rejected(rc, out, err, words)
    assert not run_dir.exists()
    guard.unchanged()
    guard.no_result()


# ----------------------------------------------------------------------------------------------------
# Datasets


def _acrobot_states(rng, n):
    th = rng.uniform(-np.pi, np.pi, (n, 2))
    vel = rng.uniform(-1, 1, (n, 2)) * [4 * np.pi, 9 * np.pi] * 0.99
    cols = [np.cos(th[:, 0]), np.sin(th[:, 0]), np.cos(th[:, 1]), np.sin(th[:, 1]), vel[:, 0], vel[:, 1]]
    return np.column_stack(cols).astype(np.float32)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    from rlmu.data.format import PairedDataset, VideoDataset, save_paired_dataset, save_video_dataset

    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    acro = VideoDataset.from_episodes(
        [_acrobot_states(rng, t + 1) for t in (30, 45, 25)],
        meta={"task": "acrobot", "domain": "state"},
        reached_goal=[True, False, False],
    )
    push = VideoDataset.from_episodes(
        [rng.integers(0, 256, (t + 1, 16, 16, 3), dtype=np.uint8) for t in (20, 30)],
        meta={"task": "push", "domain": "human", "image_size": 16},
        reached_goal=[True, False],
    )
    img = rng.integers(0, 256, (2, 6, 16, 16, 3), dtype=np.uint8)
    paired = PairedDataset.from_arrays(
        img[0],
        img[1],
        rng.standard_normal((6, 10)).astype(np.float32),
        meta={"task": "push", "domain": "human"},
    )
    return {
        "acrobot": save_video_dataset(d / "acrobot.npz", acro, compress=False),
        "acrobot_z": save_video_dataset(d / "acrobot_z.npz", acro, compress=True),
        "push": save_video_dataset(d / "push.npz", push, compress=True),
        "paired": save_paired_dataset(d / "paired.npz", paired, compress=False),
    }


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _meta(arrays) -> dict:
    return json.loads(arrays["meta_json"].tobytes())


def _save_arrays(dst: Path, arrays: dict, meta: dict | None = None) -> None:
    arrays = dict(arrays)
    if meta is not None:
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(dst, **arrays)


def _npy(header: dict, data: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + data


def _zip_with(src: Path, dst: Path, name: str, payload: bytes | None, *, mode=zipfile.ZIP_STORED, dup=False):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", mode) as zout:
        for info in zin.infolist():
            if info.filename != name or dup:
                zout.writestr(info.filename, zin.read(info))
        if payload is not None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a duplicate name is the point of one case
                zout.writestr(name, payload)


def _cut(src, dst, frac):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * frac)])


def _flip(src, dst, frac, n=64):
    data = bytearray(src.read_bytes())
    at = int(len(data) * frac)
    data[at : at + n] = bytes(b ^ 0xFF for b in data[at : at + n])
    dst.write_bytes(bytes(data))


def _set_frames(src, dst, fn):
    a = _arrays(src)
    a["frames"] = fn(a["frames"].copy())
    _save_arrays(dst, a)


def _set(src, dst, name, fn):
    a = _arrays(src)
    a[name] = fn(a[name].copy())
    _save_arrays(dst, a)


def _set_meta(src, dst, **changes):
    a = _arrays(src)
    meta = _meta(a)
    for k, v in changes.items():
        if v is _DROP:
            meta.pop(k)
        else:
            meta[k] = v
    _save_arrays(dst, a, meta)


_DROP = object()


def _poke(row, col, value):
    def fn(f):
        f[row, col] = value
        return f

    return fn


DATASET_CASES = {
    # name: (base, builder(src, dst), words in the error)
    "cut_to_nothing": ("acrobot", lambda s, d: _cut(s, d, 0.0), "not an .npz"),
    **{
        f"cut_{f}": ("acrobot", lambda s, d, f=f: _cut(s, d, f), "truncated")
        for f in (0.1, 0.3, 0.5, 0.9, 0.999)
    },
    **{
        f"cut_pixels_{f}": ("push", lambda s, d, f=f: _cut(s, d, f), "truncated")
        for f in (0.2, 0.5, 0.8, 0.99)
    },
    **{f"flip_{f}": ("acrobot", lambda s, d, f=f: _flip(s, d, f), "") for f in (0.1, 0.3, 0.5, 0.7, 0.9)},
    **{f"flip_compressed_{f}": ("acrobot_z", lambda s, d, f=f: _flip(s, d, f), "") for f in (0.3, 0.6)},
    "flip_one_byte_pixels": ("push", lambda s, d: _flip(s, d, 0.5, n=1), ""),
    "empty_file": ("acrobot", lambda s, d: d.write_bytes(b""), "not an .npz"),
    "text_file": ("acrobot", lambda s, d: d.write_text("frames, please\n"), "not an .npz"),
    "npy_file": (
        "acrobot",
        lambda s, d: d.write_bytes(_npy({"descr": "<f4", "fortran_order": False, "shape": (2,)}, bytes(8))),
        "not an .npz",
    ),
    "zip_magic_junk": (
        "acrobot",
        lambda s, d: d.write_bytes(b"PK\x03\x04" + bytes(200)),
        "truncated or corrupt",
    ),
    "nan_first_row": (
        "acrobot",
        lambda s, d: _set_frames(s, d, _poke(0, 0, np.nan)),
        "row 0 (episode 0, frame 0)",
    ),
    "nan_last_row": (
        "acrobot",
        lambda s, d: _set_frames(s, d, _poke(-1, 5, np.nan)),
        "(episode 2, frame 25)",
    ),
    "nan_middle": (
        "acrobot",
        lambda s, d: _set_frames(s, d, _poke(40, 2, np.nan)),
        "row 40 (episode 1, frame 9)",
    ),
    "inf": ("acrobot", lambda s, d: _set_frames(s, d, _poke(3, 4, np.inf)), "inf is not finite"),
    "minus_inf": ("acrobot", lambda s, d: _set_frames(s, d, _poke(3, 4, -np.inf)), "-inf is not finite"),
    "value_1e30": (
        "acrobot",
        lambda s, d: _set_frames(s, d, _poke(7, 1, 1e30)),
        "outside the task's observation range",
    ),
    "cos_above_one": (
        "acrobot",
        lambda s, d: _set_frames(s, d, _poke(7, 0, 1.01)),
        "outside the task's observation range",
    ),
    "all_nan": (
        "acrobot",
        lambda s, d: _set_frames(s, d, lambda f: np.full_like(f, np.nan)),
        "nan is not finite",
    ),
    "width_7": ("acrobot", lambda s, d: _set_frames(s, d, lambda f: np.column_stack([f, f[:, :1]])), "7-D"),
    "width_1": ("acrobot", lambda s, d: _set_frames(s, d, lambda f: f[:, :1].copy()), "1-D"),
    "width_0": ("acrobot", lambda s, d: _set_frames(s, d, lambda f: f[:, :0].copy()), "0-D"),
    "states_float64": ("acrobot", lambda s, d: _set_frames(s, d, lambda f: f.astype(np.float64)), "float32"),
    "states_int": ("acrobot", lambda s, d: _set_frames(s, d, lambda f: f.astype(np.int32)), "float32"),
    "states_3d": ("acrobot", lambda s, d: _set_frames(s, d, lambda f: f[:, :, None].copy()), "float32"),
    "pixels_uint16": ("push", lambda s, d: _set_frames(s, d, lambda f: f.astype(np.uint16)), "uint8"),
    "pixels_float": ("push", lambda s, d: _set_frames(s, d, lambda f: f.astype(np.float32)), "uint8"),
    "pixels_4_channels": (
        "push",
        lambda s, d: _set_frames(s, d, lambda f: np.concatenate([f, f[..., :1]], -1)),
        "uint8",
    ),
    "pixels_not_square": ("push", lambda s, d: _set_frames(s, d, lambda f: f[:, :, :15].copy()), "15"),
    "image_size_disagrees": ("push", lambda s, d: _set_meta(s, d, image_size=48), "image_size 48"),
    "acrobot_as_pixels": ("acrobot", lambda s, d: _set_meta(s, d, obs_kind="pixels"), "state observations"),
    "push_as_state": ("push", lambda s, d: _set_meta(s, d, obs_kind="state"), "pixels observations"),
    "task_unknown": ("acrobot", lambda s, d: _set_meta(s, d, task="pong"), "pong"),
    "task_null": ("acrobot", lambda s, d: _set_meta(s, d, task=None), "task"),
    "task_list": ("acrobot", lambda s, d: _set_meta(s, d, task=["acrobot"]), "task"),
    "header_1e12_rows": (
        "acrobot",
        lambda s, d: _zip_with(
            s,
            d,
            "frames.npy",
            _npy({"descr": "<f4", "fortran_order": False, "shape": (10**12, 6)}, bytes(4096)),
        ),
        "(1000000000000, 6)",
    ),
    "header_negative_rows": (
        "acrobot",
        lambda s, d: _zip_with(
            s, d, "frames.npy", _npy({"descr": "<f4", "fortran_order": False, "shape": (-5, 6)}, bytes(96))
        ),
        "'frames'",
    ),
    "header_garbage": (
        "acrobot",
        lambda s, d: _zip_with(s, d, "frames.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 3}   \n"),
        "'frames'",
    ),
    "header_object_dtype": (
        "acrobot",
        lambda s, d: _zip_with(
            s, d, "kind.npy", _npy({"descr": "|O", "fortran_order": False, "shape": (3,)}, bytes(24))
        ),
        "pickled Python objects",
    ),
    "unknown_member": (
        "acrobot",
        lambda s, d: _zip_with(
            s, d, "notes.npy", _npy({"descr": "|u1", "fortran_order": False, "shape": (3,)}, b"abc")
        ),
        "unknown array(s) ['notes']",
    ),
    "unknown_member_50mb": (
        "acrobot",
        lambda s, d: _zip_with(
            s,
            d,
            "blob.npy",
            _npy({"descr": "|u1", "fortran_order": False, "shape": (50 << 20,)}, bytes(50 << 20)),
            mode=zipfile.ZIP_DEFLATED,
        ),
        "unknown array(s) ['blob']",
    ),
    "non_npy_member": ("acrobot", lambda s, d: _zip_with(s, d, "README", b"hello"), "not an .npy array"),
    "duplicate_member": (
        "acrobot",
        lambda s, d: _zip_with(
            s,
            d,
            "frames.npy",
            _npy({"descr": "<f4", "fortran_order": False, "shape": (1, 6)}, bytes(24)),
            dup=True,
        ),
        "twice",
    ),
    "no_meta": ("acrobot", lambda s, d: _zip_with(s, d, "meta_json.npy", None), "not an rlmu dataset"),
    "meta_not_json": (
        "acrobot",
        lambda s, d: _set(s, d, "meta_json", lambda m: np.frombuffer(b"{oops", np.uint8)),
        "unreadable metadata",
    ),
    "meta_list": (
        "acrobot",
        lambda s, d: _set(s, d, "meta_json", lambda m: np.frombuffer(b"[1, 2]", np.uint8)),
        "unreadable metadata",
    ),
    "meta_deep": (
        "acrobot",
        lambda s, d: _set(s, d, "meta_json", lambda m: np.frombuffer(b"[" * 50000 + b"]" * 50000, np.uint8)),
        "unreadable metadata",
    ),
    "meta_huge": (
        "acrobot",
        lambda s, d: _set(s, d, "meta_json", lambda m: np.zeros(3 << 20, np.uint8)),
        "unreadable metadata",
    ),
    "meta_float": (
        "acrobot",
        lambda s, d: _set(s, d, "meta_json", lambda m: m.astype(np.float32)),
        "unreadable metadata",
    ),
    "meta_not_utf8": (
        "acrobot",
        lambda s, d: _set(s, d, "meta_json", lambda m: np.frombuffer(b'{"a": "\xff"}', np.uint8)),
        "unreadable metadata",
    ),
    "format_other": ("acrobot", lambda s, d: _set_meta(s, d, format="rlmu-other"), "wrong file type"),
    "version_3": ("acrobot", lambda s, d: _set_meta(s, d, format_version=3), "upgrade rlmu"),
    "version_1": ("acrobot", lambda s, d: _set_meta(s, d, format_version=1), "regenerate"),
    "version_0": ("acrobot", lambda s, d: _set_meta(s, d, format_version=0), "regenerate"),
    "version_text": ("acrobot", lambda s, d: _set_meta(s, d, format_version="1"), "format version"),
    "version_bool": ("acrobot", lambda s, d: _set_meta(s, d, format_version=True), "format version"),
    "meta_key_missing": ("acrobot", lambda s, d: _set_meta(s, d, n_transitions=_DROP), "metadata lacks"),
    "frames_missing": (
        "acrobot",
        lambda s, d: _zip_with(s, d, "frames.npy", None),
        "missing array(s) ['frames']",
    ),
    "lengths_missing": (
        "acrobot",
        lambda s, d: _zip_with(s, d, "episode_lengths.npy", None),
        "episode_lengths",
    ),
    "starts_shifted": (
        "acrobot",
        lambda s, d: _set(s, d, "episode_starts", lambda a: a + 1),
        "not contiguous",
    ),
    "length_zero": (
        "acrobot",
        lambda s, d: _set(s, d, "episode_lengths", lambda a: np.array([0, *a[1:]])),
        "episode_lengths",
    ),
    "length_negative": (
        "acrobot",
        lambda s, d: _set(s, d, "episode_lengths", lambda a: -a),
        "episode_lengths",
    ),
    "length_2_62": (
        "acrobot",
        lambda s, d: _set(s, d, "episode_lengths", lambda a: np.array([2**62, *a[1:]])),
        "transitions but frames",
    ),
    "counts_disagree": ("acrobot", lambda s, d: _set_meta(s, d, n_episodes=4), "metadata counts"),
    "count_text": ("acrobot", lambda s, d: _set_meta(s, d, n_episodes="3"), "integers"),
    "kind_unknown": (
        "acrobot",
        lambda s, d: _set(s, d, "kind", lambda k: np.array(["original", "mirror", "original"])),
        "mirror",
    ),
    "kind_wide": (
        "acrobot",
        lambda s, d: _set(s, d, "kind", lambda k: np.array(["original" * 100] * 3)),
        "kind",
    ),
    "source_index_bad": ("acrobot", lambda s, d: _set(s, d, "source_index", lambda a: a + 5), "source_index"),
    "reached_goal_extra": (
        "acrobot",
        lambda s, d: _set(s, d, "reached_goal", lambda a: np.append(a, True)),
        "reached_goal",
    ),
    "reversed_in_original": (
        "acrobot",
        lambda s, d: _set(s, d, "reversed_mask", lambda a: np.ones_like(a)),
        "reversed_mask",
    ),
    "jitter_j_on_original": ("acrobot", lambda s, d: _set(s, d, "jitter_j", lambda a: a + 3), "jitter_j"),
    "mask_int": (
        "acrobot",
        lambda s, d: _set(s, d, "reversed_mask", lambda a: a.astype(np.int8)),
        "reversed_mask",
    ),
    "paired_state_nan": (
        "paired",
        lambda s, d: _set(
            s,
            d,
            "state",
            lambda a: np.where(np.arange(a.size).reshape(a.shape) == 13, np.nan, a).astype(np.float32),
        ),
        "nan is not finite",
    ),
    "paired_shapes_differ": (
        "paired",
        lambda s, d: _set(s, d, "human", lambda a: a[:, :8].copy()),
        "shapes differ",
    ),
    "paired_for_acrobot": ("paired", lambda s, d: _set_meta(s, d, task="acrobot"), "image tasks"),
    "paired_count": ("paired", lambda s, d: _set_meta(s, d, n_pairs=7), "n_pairs"),
    "paired_robot_float": (
        "paired",
        lambda s, d: _set(s, d, "robot", lambda a: a.astype(np.float32)),
        "uint8",
    ),
}


def _build(datasets, tmp_path, case) -> Path:
    base, build, _ = DATASET_CASES[case]
    dst = tmp_path / f"{case}.npz"
    build(datasets[base], dst)
    return dst


@pytest.mark.parametrize("case", sorted(DATASET_CASES))
def test_bad_dataset_info(datasets, study, tmp_path, capsys, case):
    path = _build(datasets, tmp_path, case)
    guard = Guard(study)
    rc, out, err = _run(capsys, ["data", "info", path])
    _rejected(rc, out, err, str(path), DATASET_CASES[case][2])
    assert out == ""
    guard.unchanged()


@pytest.mark.parametrize(
    "case",
    [
        "width_7",
        "width_1",
        "nan_middle",
        "inf",
        "value_1e30",
        "header_1e12_rows",
        "unknown_member",
        "cut_0.5",
        "flip_0.5",
        "task_unknown",
    ],
)
def test_bad_dataset_stops_training_before_the_run_directory(datasets, study, tmp_path, capsys, case):
    path = _build(datasets, tmp_path, case)
    guard = Guard(study)
    run_dir = study / "runs" / "acrobot" / "rlv_nopair" / "seed_1"
    argv = ["train", "--no-progress", "--run-dir", run_dir, "seed=1", "task=acrobot", "variant=rlv_nopair"]
    rc, out, err = _run(capsys, [*argv, *TINY, f"data.observations={path}"])
    _rejected(rc, out, err, str(path), "data.observations", DATASET_CASES[case][2], only_line=False)
    assert not run_dir.exists()
    guard.unchanged()
    guard.no_result()


def test_another_tasks_file_and_a_directory_stop_training(datasets, study, capsys):
    guard = Guard(study)
    run_dir = study / "runs" / "acrobot" / "rlv_nopair" / "seed_1"
    argv = [
        "train",
        "--no-progress",
        "--run-dir",
        run_dir,
        "seed=1",
        "task=acrobot",
        "variant=rlv_nopair",
        *TINY,
    ]
    for path, words in ((datasets["push"], "is for task 'push'"), (study, "not a regular file")):
        rc, out, err = _run(capsys, [*argv, f"data.observations={path}"])
        _rejected(rc, out, err, str(path), words, only_line=False)
    assert not run_dir.exists()
    guard.unchanged()


@pytest.mark.parametrize(
    "case", ["paired_state_nan", "paired_shapes_differ", "paired_for_acrobot", "cut_0.5"]
)
def test_bad_paired_data_stops_training_before_the_run_directory(datasets, study, tmp_path, capsys, case):
    if case == "cut_0.5":
        path = tmp_path / "paired_cut.npz"
        _cut(datasets["paired"], path, 0.5)
    else:
        path = _build(datasets, tmp_path, case)
    guard = Guard(study)
    run_dir = study / "runs" / "push" / "rlv" / "seed_1"
    argv = [
        "train",
        "--no-progress",
        "--run-dir",
        run_dir,
        "seed=1",
        "task=push",
        "variant=rlv",
        "image_size=16",
    ]
    data = [f"data.observations={datasets['push']}", f"data.paired={path}"]
    rc, out, err = _run(capsys, [*argv, *TINY, *data])
    _rejected(rc, out, err, str(path), "data.paired", only_line=False)
    assert not run_dir.exists()
    guard.unchanged()
    guard.no_result()


@pytest.mark.slow  # a fresh interpreter per case
@pytest.mark.parametrize(
    "argv",
    [
        ["data", "info", "{bad_npz}"],
        ["train", "--no-progress", "--config", "{utf16}", "--run-dir", "{run}"],
        ["train", "--no-progress", "--run-dir", "{run}", "task=acrobot", "variant=sac", "seed=" + "9" * 30],
    ],
)
def test_as_a_process_no_traceback(datasets, study, tmp_path, argv):
    import subprocess
    import sys

    bad = tmp_path / "bad.npz"
    _zip_with(
        datasets["acrobot"],
        bad,
        "frames.npy",
        _npy({"descr": "<f4", "fortran_order": False, "shape": (10**12, 6)}, b""),
    )
    utf16 = tmp_path / "run.yaml"
    utf16.write_bytes("task: acrobot\nvariant: sac\n".encode("utf-16"))
    run = study / "runs" / "acrobot" / "sac" / "seed_5"
    args = [a.format(bad_npz=bad, utf16=utf16, run=run) for a in argv]
    guard = Guard(study)
    proc = subprocess.run([sys.executable, "-m", "rlmu", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlmu: error: "), proc.stderr
    assert not run.exists()
    guard.unchanged()


# ----------------------------------------------------------------------------------------------------
# Checkpoints: ``rlmu train`` resuming a run whose checkpoint is damaged


@pytest.fixture
def interrupted(study, finished_run) -> Path:
    """A run killed during epoch 2: its epoch-1 checkpoint as ``latest.pt``, ``run.json`` still running."""
    d = study / "runs" / "acrobot" / "sac" / "seed_1"
    shutil.copytree(finished_run, d)
    ck = d / "checkpoints"
    (ck / "latest.pt").unlink()
    (ck / "previous.pt").rename(ck / "latest.pt")
    record = json.loads((d / "run.json").read_text())
    record.update(status="running", finished_at=None, epochs_done=1)
    (d / "run.json").write_text(json.dumps(record))
    return d


def _tensor_span(path: Path, index: int) -> tuple[int, int]:
    """(offset, size) of the bytes of the ``index``-th tensor storage in a checkpoint archive."""
    with zipfile.ZipFile(path) as zf:
        infos = [i for i in zf.infolist() if "/data/" in i.filename and i.file_size >= 64]
    info = sorted(infos, key=lambda i: i.header_offset)[index]
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _flip_tensor(index: int, n: int = 64):
    def fn(p: Path) -> None:
        off, size = _tensor_span(p, index)
        data = bytearray(p.read_bytes())
        data[off : off + min(n, size)] = bytes(b ^ 0xFF for b in data[off : off + min(n, size)])
        p.write_bytes(bytes(data))

    return fn


def _resave(edit):
    """A checkpoint with a valid checksum whose payload was edited (as a buggy writer would leave it)."""

    def fn(p: Path) -> None:
        from rlmu.train.checkpoint import load_checkpoint, save_checkpoint

        payload = load_checkpoint(p)
        edit(payload)
        payload = {k: v for k, v in payload.items() if k not in ("format", "version")}
        tmp = p.parent / "scratch" / "latest.pt"
        save_checkpoint(tmp, payload)
        shutil.copyfile(tmp, p)
        shutil.rmtree(tmp.parent)

    return fn


def _with_trailer(obj):
    def fn(p: Path) -> None:
        buf = io.BytesIO()
        torch.save(obj, buf)
        data = buf.getvalue()
        p.write_bytes(
            data + struct.pack("<16s32sQ", b"rlmu-ckpt-sha256", hashlib.sha256(data).digest(), len(data))
        )

    return fn


def _first_tensor_key(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, torch.Tensor) and v.ndim == 2:
            return [*prefix, k]
        if isinstance(v, dict):
            found = _first_tensor_key(v, [*prefix, k])
            if found:
                return found
    return None


def _reshape_first_weight(payload):
    keys = _first_tensor_key(payload["agent"])
    node = payload["agent"]
    for k in keys[:-1]:
        node = node[k]
    t = node[keys[-1]]
    node[keys[-1]] = torch.zeros(t.shape[0] + 1, *t.shape[1:], dtype=t.dtype)


class _Obj:  # an arbitrary class: weights_only loading refuses to build it
    pass


def _cut_ckpt(frac):
    def fn(p: Path) -> None:
        data = p.read_bytes()
        p.write_bytes(data[: int(len(data) * frac)] if frac >= 0 else data[:frac])

    return fn


CHECKPOINT_CASES = {
    **{f"flip_tensor_{i}": _flip_tensor(i) for i in (0, 1, 3, -1)},
    "flip_one_bit": lambda p: _flip_tensor(2, n=1)(p),
    **{f"flip_at_{f}": (lambda p, f=f: _flip(p, p, f, n=8)) for f in (0.05, 0.5, 0.95)},
    **{f"cut_{f}": _cut_ckpt(f) for f in (0.0, 0.01, 0.5, 0.99)},
    "cut_last_byte": _cut_ckpt(-1),
    "bytes_appended": lambda p: p.write_bytes(p.read_bytes() + b"\0" * 100),
    "text": lambda p: p.write_text("not a checkpoint, just some text that is long enough for a trailer " * 3),
    "random": lambda p: p.write_bytes(
        np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    ),
    "empty": lambda p: p.write_bytes(b""),
    "no_trailer": lambda p: p.write_bytes(p.read_bytes()[:-56]),
    "foreign_format": _with_trailer({"format": "something-else", "weights": torch.zeros(3)}),
    "old_version": _with_trailer({"format": "rlmu-train-checkpoint", "version": 1}),
    "not_a_dict": _with_trailer([1, 2, 3]),
    "pickled_object": _with_trailer({"format": "rlmu-train-checkpoint", "version": 2, "x": _Obj()}),
    "directory": lambda p: (p.unlink(), p.mkdir()),
}
# Valid files (checksum right) whose payload does not fit the run: the trainer's own checks.
CHECKPOINT_PAYLOAD_CASES = {
    "missing_agent": _resave(lambda c: c.pop("agent")),
    "missing_trainer_state": _resave(lambda c: c.pop("trainer")),
    "weight_wrong_shape": _resave(_reshape_first_weight),
}


def _resume(capsys, run_dir: Path) -> tuple[int, str, str]:
    return _run(capsys, ["train", "--no-progress", "--run-dir", run_dir, *RUN_ARGS])


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES) + sorted(CHECKPOINT_PAYLOAD_CASES))
def test_damaged_checkpoint_stops_the_resume_and_changes_nothing(interrupted, study, capsys, case):
    latest = interrupted / "checkpoints" / "latest.pt"
    {**CHECKPOINT_CASES, **CHECKPOINT_PAYLOAD_CASES}[case](latest)
    guard = Guard(study)
    rc, out, err = _resume(capsys, interrupted)
    _rejected(rc, out, err, str(latest), only_line=False)
    guard.unchanged()
    guard.no_result()


def test_a_symlink_to_a_device_is_not_a_checkpoint(interrupted, study, capsys):
    latest = interrupted / "checkpoints" / "latest.pt"
    latest.unlink()
    latest.symlink_to("/dev/zero")
    guard = Guard(study)
    rc, out, err = _resume(capsys, interrupted)
    _rejected(rc, out, err, str(latest), "not a regular file", only_line=False)
    guard.unchanged()


@pytest.mark.parametrize("damage", ["flip_tensor_0", "cut_0.5", "no_trailer"])
def test_damaged_latest_falls_back_to_the_previous_checkpoint(interrupted, finished_run, capsys, damage):
    if not _wired("load_latest_checkpoint"):
        pytest.xfail("the trainer does not resume through rlmu.train.checkpoint.load_latest_checkpoint yet")
    ck = interrupted / "checkpoints"
    shutil.copyfile(ck / "latest.pt", ck / "previous.pt")  # epoch 1, good
    shutil.copyfile(finished_run / "checkpoints" / "latest.pt", ck / "latest.pt")  # epoch 2, then damaged
    CHECKPOINT_CASES[damage](ck / "latest.pt")
    rc, out, err = _resume(capsys, interrupted)
    assert rc == 0 and "Traceback" not in err, err
    assert str(ck / "latest.pt") in err  # the rejected file is reported
    assert (interrupted / "progress.csv").read_bytes() == (finished_run / "progress.csv").read_bytes()
    assert json.loads((interrupted / "run.json").read_text())["status"] == "completed"


def test_both_generations_damaged_names_both(interrupted, study, capsys):
    ck = interrupted / "checkpoints"
    shutil.copyfile(ck / "latest.pt", ck / "previous.pt")
    _flip_tensor(0)(ck / "latest.pt")
    _cut_ckpt(0.5)(ck / "previous.pt")
    guard = Guard(study)
    rc, out, err = _resume(capsys, interrupted)
    line = _rejected(rc, out, err, str(ck / "latest.pt"), only_line=False)
    if _wired("load_latest_checkpoint"):
        assert str(ck / "previous.pt") in line
    guard.unchanged()
    guard.no_result()


def test_leftovers_of_an_interrupted_write_are_removed_on_resume(interrupted, finished_run, capsys):
    if not _wired("remove_leftovers"):
        pytest.xfail("the trainer does not call rlmu.utils.io.remove_leftovers yet")
    junk = [
        interrupted / "checkpoints" / ".latest.pt.k3j9x_2a.tmp",
        interrupted / ".progress.csv.abcdefgh.tmp",
    ]
    for p in junk:
        p.write_bytes(b"half of a file")
    keep = interrupted / "notes.tmp"
    keep.write_text("mine")
    rc, out, err = _resume(capsys, interrupted)
    assert rc == 0, err
    assert not any(p.exists() for p in junk) and keep.read_text() == "mine"
    assert (interrupted / "progress.csv").read_bytes() == (finished_run / "progress.csv").read_bytes()


# ----------------------------------------------------------------------------------------------------
# The command line's own handling of the error types


@pytest.mark.parametrize("kind", ["UserError", "DatasetError", "CheckpointError"])
def test_main_prints_input_errors_as_one_line(monkeypatch, capsys, kind):
    import rlmu.data.cli
    import rlmu.errors

    def fail(args):
        raise getattr(rlmu.errors, kind)("some/file.pt: line one\nline two\n")

    monkeypatch.setattr(rlmu.data.cli, "cmd_info", fail)
    rc, out, err = _run(capsys, ["data", "info", "whatever.npz"])
    assert rc == 2 and out == ""
    assert err == "rlmu: error: some/file.pt: line one line two\n"


def test_case_count():
    n = (
        len(CONFIG_FILES)
        + 2
        + len(OVERRIDES)
        + len(MACHINE)
        + len(DATASET_CASES)
        + 10
        + 2
        + 4
        + 3
        + len(CHECKPOINT_CASES)
        + len(CHECKPOINT_PAYLOAD_CASES)
        + 1
        + 3
        + 1
        + 1
    )
    assert n >= 150, n
