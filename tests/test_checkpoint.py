"""Checkpoint files: checksum trailer, verification on load, two generations, payload checks."""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest
import torch

from rlmu.errors import CheckpointError
from rlmu.train.checkpoint import (
    ANY,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    TRAILER_MAGIC,
    TRAILER_SIZE,
    TensorSpec,
    check_tree,
    checkpoint_exists,
    load_checkpoint,
    load_latest_checkpoint,
    previous_checkpoint_path,
    save_checkpoint,
    to_numpy_tree,
)


def _payload(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    rng = np.random.default_rng(seed)
    return {
        "agent": {"critic": net.state_dict()},
        "replay": {"frames": rng.standard_normal((50, 6)).astype(np.float32), "head": 50},
        "trainer": {"epoch": seed, "env_steps": 100 * seed, "wall_time_s": 1.5},
        "rows": [["1", "-99.0"], ["2", "-80.5"]],
    }


def _tensor_data_offset(path, name_part: str = "data/0") -> tuple[int, int]:
    """(offset, size) of a tensor's bytes inside the archive (stored members, torch does not compress)."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(name_part))
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _with_trailer(path, obj) -> None:
    """A file with a valid checksum trailer around ``torch.save(obj)`` (forged foreign/old payloads)."""
    import hashlib
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    path.write_bytes(data + struct.pack("<16s32sQ", TRAILER_MAGIC, hashlib.sha256(data).digest(), len(data)))


def _expect(path, *words, loader=load_checkpoint):
    with pytest.raises(CheckpointError) as info:
        loader(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_round_trip_and_plain_torch_load(tmp_path):
    p = tmp_path / "latest.pt"
    payload = _payload(1)
    save_checkpoint(p, payload)
    back = load_checkpoint(p)
    assert back["format"] == CHECKPOINT_FORMAT and back["version"] == CHECKPOINT_VERSION
    for k, v in payload["agent"]["critic"].items():
        assert torch.equal(back["agent"]["critic"][k], v)
    assert np.array_equal(to_numpy_tree(back["replay"])["frames"], payload["replay"]["frames"])
    assert back["trainer"] == payload["trainer"] and back["rows"] == payload["rows"]
    # The trailer is the last 56 bytes; the archive before it opens with torch.load alone.
    raw = p.read_bytes()
    assert raw[-TRAILER_SIZE:].startswith(TRAILER_MAGIC)
    plain = torch.load(p, weights_only=True)
    assert torch.equal(plain["agent"]["critic"]["0.weight"], payload["agent"]["critic"]["0.weight"])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["latest.pt"]


def test_flipped_bytes_inside_a_tensor_fail_the_checksum(tmp_path):
    p = tmp_path / "latest.pt"
    save_checkpoint(p, _payload())
    offset, size = _tensor_data_offset(p)
    assert size >= 64
    data = bytearray(p.read_bytes())
    data[offset : offset + 64] = bytes(b ^ 0xFF for b in data[offset : offset + 64])
    p.write_bytes(bytes(data))
    # torch alone reads the damaged tensor without complaint: only the checksum catches it.
    assert torch.load(p, weights_only=True)["format"] == CHECKPOINT_FORMAT
    _expect(p, "checksum mismatch", "corrupt")


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.9, 0.999])
def test_truncated_checkpoint_is_rejected(tmp_path, keep):
    p = tmp_path / "latest.pt"
    save_checkpoint(p, _payload())
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)])
    _expect(p, "truncated")


def test_bytes_appended_or_cut_at_the_end_are_rejected(tmp_path):
    p = tmp_path / "latest.pt"
    save_checkpoint(p, _payload())
    data = p.read_bytes()
    p.write_bytes(data + b"\0" * 8)
    _expect(p, "no checksum trailer")
    p.write_bytes(data[:1000] + data[-TRAILER_SIZE:])  # archive cut, trailer kept
    _expect(p, "cut or extended")


def test_files_without_a_trailer_and_foreign_files_are_rejected(tmp_path):
    old = tmp_path / "old.pt"  # written before checksums: a bare torch archive
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}, old)
    _expect(old, "no checksum trailer")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint at all, but longer than a trailer is, so it is read to the end\n")
    _expect(text, "no checksum trailer")
    tiny = tmp_path / "tiny.pt"
    tiny.write_bytes(b"PK")
    _expect(tiny, "too short")
    foreign = tmp_path / "foreign.pt"
    _with_trailer(foreign, {"format": "something-else", "weights": torch.zeros(3)})
    _expect(foreign, "not an rlmu training checkpoint", "something-else")
    listed = tmp_path / "list.pt"
    _with_trailer(listed, [1, 2, 3])
    _expect(listed, "not an rlmu training checkpoint")
    version = tmp_path / "v1.pt"
    _with_trailer(version, {"format": CHECKPOINT_FORMAT, "version": 1})
    _expect(version, "checkpoint version 1", f"reads {CHECKPOINT_VERSION}")
    garbage = tmp_path / "garbage.pt"
    import hashlib

    junk = bytes(range(256)) * 4
    garbage.write_bytes(
        junk + struct.pack("<16s32sQ", TRAILER_MAGIC, hashlib.sha256(junk).digest(), len(junk))
    )
    _expect(garbage, "cannot read checkpoint")
    _expect(tmp_path / "missing.pt", "no such file")
    _expect(tmp_path, "not a regular file")


class _Custom:  # an arbitrary object: weights_only loading must refuse to build it
    pass


def test_pickled_objects_are_refused_with_one_line(tmp_path):
    p = tmp_path / "obj.pt"
    _with_trailer(p, {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "x": _Custom()})
    _expect(p, "cannot read checkpoint")


def test_save_keeps_the_previous_generation(tmp_path):
    p = tmp_path / "ckpt" / "latest.pt"
    prev = previous_checkpoint_path(p)
    assert prev == tmp_path / "ckpt" / "previous.pt"
    assert previous_checkpoint_path(tmp_path / "run.pt").name == "run.previous.pt"
    assert not checkpoint_exists(p)
    save_checkpoint(p, _payload(1))
    assert not prev.exists() and checkpoint_exists(p)
    save_checkpoint(p, _payload(2))
    save_checkpoint(p, _payload(3))
    assert load_checkpoint(p)["trainer"]["epoch"] == 3
    assert load_checkpoint(prev)["trainer"]["epoch"] == 2
    assert sorted(x.name for x in p.parent.iterdir()) == ["latest.pt", "previous.pt"]


def test_a_truncated_latest_does_not_replace_a_good_previous(tmp_path):
    p = tmp_path / "latest.pt"
    save_checkpoint(p, _payload(1))
    save_checkpoint(p, _payload(2))
    p.write_bytes(p.read_bytes()[:500])  # the disk lost the end of latest
    save_checkpoint(p, _payload(3))
    assert load_checkpoint(p)["trainer"]["epoch"] == 3
    assert load_checkpoint(previous_checkpoint_path(p))["trainer"]["epoch"] == 1


def test_killed_save_leaves_verified_files_and_only_removable_leftovers(tmp_path):
    import signal
    import subprocess
    import sys
    import textwrap

    from rlmu.utils.io import remove_leftovers

    p = tmp_path / "latest.pt"
    save_checkpoint(p, _payload(1))
    save_checkpoint(p, _payload(2))
    before = {x.name: x.read_bytes() for x in tmp_path.iterdir()}
    script = textwrap.dedent(
        f"""
        import time, torch
        from rlmu.train import checkpoint as ck
        real = torch.save
        def slow(obj, f):
            real(obj, f)
            f.flush()
            print("written", flush=True)
            time.sleep(60)
        ck.torch.save = slow
        ck.save_checkpoint({str(p)!r}, {{"trainer": {{"epoch": 9}}, "w": torch.ones(1000)}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert {x.name: x.read_bytes() for x in tmp_path.iterdir() if x.name in before} == before
    assert load_checkpoint(p)["trainer"]["epoch"] == 2
    assert load_checkpoint(previous_checkpoint_path(p))["trainer"]["epoch"] == 1
    removed = remove_leftovers(tmp_path)
    assert len(removed) == 1 and removed[0].name.startswith(".latest.pt.")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["latest.pt", "previous.pt"]


def _corrupt(path) -> None:
    offset, _ = _tensor_data_offset(path)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01  # a single bit
    path.write_bytes(bytes(data))


def test_load_latest_falls_back_to_the_previous_generation(tmp_path):
    p = tmp_path / "latest.pt"
    prev = previous_checkpoint_path(p)
    save_checkpoint(p, _payload(1))
    payload, used, warnings = load_latest_checkpoint(p)
    assert used == p and warnings == [] and payload["trainer"]["epoch"] == 1
    save_checkpoint(p, _payload(2))
    _corrupt(p)
    payload, used, warnings = load_latest_checkpoint(p)
    assert used == prev and payload["trainer"]["epoch"] == 1
    assert len(warnings) == 1 and str(p) in warnings[0] and "checksum mismatch" in warnings[0]
    assert str(prev) in warnings[0]
    # The rejected file is kept as it is (for inspection); nothing is renamed or removed.
    assert sorted(x.name for x in tmp_path.iterdir()) == ["latest.pt", "previous.pt"]
    # Latest gone (a rename interrupted where hard links are missing): previous, with a warning.
    p.unlink()
    payload, used, warnings = load_latest_checkpoint(p)
    assert used == prev and "no such file" in warnings[0]


def test_load_latest_names_every_file_when_none_is_usable(tmp_path):
    p = tmp_path / "latest.pt"
    with pytest.raises(CheckpointError, match="no usable checkpoint") as info:
        load_latest_checkpoint(p)
    assert str(p) in str(info.value) and str(previous_checkpoint_path(p)) in str(info.value)
    save_checkpoint(p, _payload(1))
    save_checkpoint(p, _payload(2))
    _corrupt(p)
    prev = previous_checkpoint_path(p)
    prev.write_bytes(prev.read_bytes()[:-1])
    msg = _expect(p, loader=load_latest_checkpoint)
    assert f"{p}: checksum mismatch" in msg and f"{prev}: no checksum trailer" in msg


def test_load_latest_rejects_a_payload_that_does_not_fit(tmp_path):
    p = tmp_path / "latest.pt"
    save_checkpoint(p, _payload(1))
    bad = _payload(2)
    del bad["replay"]
    save_checkpoint(p, bad)  # a valid file whose payload lacks a key
    expected = {
        "format": str,
        "version": int,
        "agent": {"critic": _payload()["agent"]["critic"]},
        "replay": {"frames": TensorSpec((None, 6), torch.float32), "head": 0},
        "trainer": ANY,
        "rows": ANY,
    }
    payload, used, warnings = load_latest_checkpoint(p, lambda got, f: check_tree(expected, got, f))
    assert used == previous_checkpoint_path(p) and payload["trainer"]["epoch"] == 1
    assert "replay is missing" in warnings[0] and str(p) in warnings[0]

    def needs_key(got, f):
        got["trainer"]["no_such_key"]  # a KeyError from the caller's own check rejects the file too

    msg = _expect(p, loader=lambda x: load_latest_checkpoint(x, needs_key))
    assert "does not fit this run" in msg and "no_such_key" in msg


def test_check_tree_names_keys_shapes_and_dtypes():
    expected = {
        "agent": {"networks": {"critic": {"0": {"weight": torch.zeros(256, 6), "bias": torch.zeros(256)}}}},
        "replay": {"frames": TensorSpec((None, 6), torch.float32), "n": 0},
        "flags": [True, "x"],
        "rng": ANY,
    }
    good = {
        "agent": {"networks": {"critic": {"0": {"weight": torch.ones(256, 6), "bias": torch.ones(256)}}}},
        "replay": {"frames": torch.zeros(17, 6), "n": 17},
        "flags": [False, "y"],
        "rng": object(),
    }
    check_tree(expected, good, "x.pt")  # values may differ, kinds and shapes may not
    check_tree(expected, {**good, "replay": {"frames": np.zeros((3, 6), np.float32), "n": 3.0}}, "x.pt")

    def problem(got) -> str:
        with pytest.raises(CheckpointError) as info:
            check_tree(expected, got, "runs/r/checkpoints/latest.pt")
        return str(info.value)

    bad = {
        **good,
        "agent": {"networks": {"critic": {"0": {"weight": torch.ones(256, 7), "bias": torch.ones(256)}}}},
    }
    assert problem(bad) == (
        "checkpoint runs/r/checkpoints/latest.pt: agent.networks.critic.0.weight has shape (256, 7), "
        "expected (256, 6)"
    )
    assert "replay.frames has shape (17, 7), expected (*, 6)" in problem(
        {**good, "replay": {"frames": torch.zeros(17, 7), "n": 1}}
    )
    assert "replay.frames has dtype torch.float64" in problem(
        {**good, "replay": {"frames": torch.zeros(2, 6, dtype=torch.float64), "n": 1}}
    )
    assert "replay.n is str, expected int" in problem(
        {**good, "replay": {"frames": torch.zeros(1, 6), "n": "1"}}
    )
    assert "rng is missing" in problem({k: v for k, v in good.items() if k != "rng"})
    assert "extra is not expected" in problem({**good, "extra": 1})
    check_tree(expected, {**good, "extra": 1}, "x.pt", allow_extra=True)
    assert "flags has 1 entries, expected 2" in problem({**good, "flags": [True]})
    assert "flags.0 is int, expected bool" in problem({**good, "flags": [1, "x"]})
    assert "agent is list, expected a mapping" in problem({**good, "agent": []})
    assert "replay.frames is int, expected a tensor" in problem({**good, "replay": {"frames": 3, "n": 1}})
    many = {k: 1 for k in "abcdefgh"}
    assert "and " in problem(many) and "more" in problem(many)
