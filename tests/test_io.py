"""Atomic writes: all or nothing, and ordinary file permissions."""

import os
import stat

import pytest

from rlmu.utils.io import atomic_open, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    atomic_write_text(p, "first\n")
    atomic_write_text(p, "second\n")
    assert p.read_text() == "second\n"
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]  # no temporary files left


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_json(p, {"a": 1})
    with pytest.raises(RuntimeError), atomic_open(p, "w") as f:
        f.write('{"half": ')
        raise RuntimeError("killed mid-write")
    assert p.read_text().strip().startswith("{") and '"a": 1' in p.read_text()
    assert [x.name for x in tmp_path.iterdir()] == ["f.json"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = tmp_path / "f.bin"
        with atomic_open(p) as f:
            f.write(b"x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
    finally:
        os.umask(old)


def test_rejects_append_mode(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "f", "a"):
        pass


# ---- leftovers of interrupted writes --------------------------------------------------------------------


def _killed_writer(target):
    """Run atomic_open in a child process that is SIGKILLed mid-write; its temporary file stays behind."""
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import time
        from rlmu.utils.io import atomic_open
        with atomic_open({str(target)!r}, "wb") as f:
            f.write(b"half a file"); f.flush()
            print("writing", flush=True)
            time.sleep(60)
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


def test_remove_leftovers_deletes_only_temporary_files_of_killed_writers(tmp_path):
    from rlmu.utils.io import is_leftover, remove_leftovers

    atomic_write_text(tmp_path / "progress.csv", "a,b\n")
    _killed_writer(tmp_path / "latest.pt")
    _killed_writer(tmp_path / "progress.csv")
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "progress.csv")
    assert len(left) == 2 and all(is_leftover(n) for n in left), left
    # Files that only look similar, a directory and a symlink with a leftover's name stay.
    keep = [
        "latest.pt",
        ".latest.pt.tmp",
        ".latest.pt.ABCDEFGH.tmp",  # upper case: mkstemp never makes it
        ".latest.pt.abcdefg.tmp",  # 7 characters
        "latest.pt.abcdefgh.tmp",  # no leading dot
        ".latest.pt.abcdefgh.tmp.bak",
        "notes.tmp",
    ]
    for name in keep:
        (tmp_path / name).write_text("keep")
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (tmp_path / ".link.abcdefgh.tmp").symlink_to(outside)
    removed = remove_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == left
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"progress.csv", *keep, ".dir.abcdefgh.tmp", "outside.txt", ".link.abcdefgh.tmp"}
    assert outside.read_text() == "keep" and (tmp_path / "progress.csv").read_text() == "a,b\n"
    assert remove_leftovers(tmp_path) == []


def test_remove_leftovers_recursive_and_missing_directory(tmp_path):
    from rlmu.utils.io import remove_leftovers

    sub = tmp_path / "checkpoints"
    _killed_writer(sub / "latest.pt")
    assert remove_leftovers(tmp_path) == []  # not recursive by default
    assert len(list(sub.iterdir())) == 1
    assert [p.parent for p in remove_leftovers(tmp_path, recursive=True)] == [sub]
    assert list(sub.iterdir()) == []
    assert remove_leftovers(tmp_path / "missing") == []


def test_atomic_link_keeps_the_source_and_replaces_the_target(tmp_path):
    from rlmu.utils.io import atomic_link

    src, dst = tmp_path / "latest.pt", tmp_path / "previous.pt"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    atomic_link(src, dst)
    assert src.read_bytes() == dst.read_bytes() == b"new"
    atomic_write_text(src, "newer")  # replacing the source leaves the link's file alone
    assert dst.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt", "previous.pt"]


def test_available_memory_is_at_most_the_machine_total():
    from rlmu.utils.io import available_memory_bytes

    free = available_memory_bytes()
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert free is not None and 0 < free <= total
