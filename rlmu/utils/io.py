"""Atomic file writes: a reader (or a resumed run) sees either the old file or the new one, never half.

Every result, dataset and checkpoint in rlmu is written through these helpers: the data goes to a
temporary file in the destination directory, is flushed and fsync'ed, and is renamed over the target
(``os.replace`` is atomic on POSIX within one file system).

A writer killed between creating and renaming its temporary file leaves it behind, named
``.{target name}.{8 random characters}.tmp`` next to the target (a hidden file, never the target's own
name). :func:`remove_leftovers` deletes exactly those files of one directory.

:func:`available_memory_bytes` says how much memory this process can still allocate (the machine's or
its cgroup's limit), for checks of a size before anything is allocated.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# Temporary names: ``tempfile.mkstemp(prefix=".{name}.", suffix=".tmp")`` puts 8 characters of
# ``_TMP_ALPHABET`` between prefix and suffix (CPython's ``tempfile._RandomNameSequence``).
_TMP_PREFIX = ".{name}."
_TMP_SUFFIX = ".tmp"
_TMP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on clean exit fsync it and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX.format(name=path.name), suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the permissions a plain open() would (0666 & ~umask).
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable (best effort: not every file system allows opening a directory).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_link(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make ``dst`` a second name of the file ``src`` (a hard link), replacing ``dst`` atomically.

    ``src`` stays in place, so a reader always finds it. Where the file system has no hard links, ``src``
    is renamed to ``dst`` instead (then ``src`` is gone until its writer puts a new file there).
    """
    src, dst = Path(src), Path(dst)
    tmp = None
    for _ in range(100):
        name = "".join(secrets.choice(_TMP_ALPHABET) for _ in range(8))
        candidate = dst.parent / f"{_TMP_PREFIX.format(name=dst.name)}{name}{_TMP_SUFFIX}"
        try:
            os.link(src, candidate)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (EPERM, ENOTSUP, EXDEV, ...)
            os.replace(src, dst)
            _fsync_dir(dst.parent)
            return
        tmp = candidate
        break
    if tmp is None:
        raise FileExistsError(f"no free temporary name for {dst}")
    try:
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(dst.parent)


def is_leftover(path: str | os.PathLike) -> bool:
    """Whether ``path``'s name is that of a temporary file of :func:`atomic_open` / :func:`atomic_link`."""
    return _TMP_NAME.fullmatch(Path(path).name) is not None


def remove_leftovers(directory: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes left in ``directory``; return them.

    Only regular files named ``.{name}.{8 characters of [a-z0-9_]}.tmp`` are removed (the names
    :func:`atomic_open` and :func:`atomic_link` use); nothing else is touched, symbolic links are
    neither removed nor followed. ``recursive`` also cleans the subdirectories. Call it only while no
    other process writes into the directory (a writer's file in progress has the same name). A missing
    directory removes nothing.
    """
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            if recursive:
                removed += remove_leftovers(entry.path, recursive=True)
            continue
        if entry.is_file(follow_symlinks=False) and is_leftover(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


# ----------------------------------------------------------------------------------------------------
# Machine resources


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def available_memory_bytes() -> int | None:
    """Bytes of memory this process can still allocate, or None where the machine does not say.

    The smaller of the machine's available memory (``MemAvailable`` in ``/proc/meminfo``, else
    ``os.sysconf``'s available pages) and the room left under this process's cgroup limit (v2
    ``memory.max`` - ``memory.current``, or v1 ``memory.limit_in_bytes`` - ``memory.usage_in_bytes``).
    """
    candidates: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not candidates:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:  # v1 "no limit" is ~2**63
            candidates.append(max(limit - usage, 0))
            break
    return min(candidates) if candidates else None
