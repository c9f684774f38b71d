"""Checkpoint files: ``torch.save`` archives with a SHA-256 trailer, read with ``weights_only=True``.

A checkpoint holds tensors and plain Python values only (dict, list, tuple, str, int, float, bool, None),
so loading never unpickles arbitrary objects. Numpy arrays (replay buffers, RNG states) are stored as
tensors and turned back into arrays by :func:`to_numpy_tree`.

File layout: the ``torch.save`` zip archive, then a 56-byte trailer written into the same temporary
file before it is renamed into place (so the checksum and the archive can never disagree after a crash)::

    16 bytes  b"rlmu-ckpt-sha256"
    32 bytes  SHA-256 digest of the archive bytes
     8 bytes  length of the archive in bytes (little-endian unsigned)

Zip readers find an archive's directory from its end and skip trailing bytes, so the file also opens
with a plain ``torch.load(path, weights_only=True)``; :func:`load_checkpoint` verifies the trailer first.

Two generations are kept: :func:`save_checkpoint` makes the current ``latest.pt`` the ``previous.pt``
(:func:`previous_checkpoint_path`) before the new file replaces it, and
:func:`load_latest_checkpoint` falls back to the previous file when the latest is unusable.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlmu.errors import CheckpointError
from rlmu.utils.io import atomic_link, atomic_open

CHECKPOINT_FORMAT = "rlmu-train-checkpoint"
CHECKPOINT_VERSION = 2

TRAILER_MAGIC = b"rlmu-ckpt-sha256"
_TRAILER = struct.Struct("<16s32sQ")
TRAILER_SIZE = _TRAILER.size  # 56


def to_torch_tree(obj: Any) -> Any:
    """Replace every numpy array (and numpy scalar) in a nested structure by a tensor / Python scalar."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "US":  # strings: keep as a list of str
            return [str(x) for x in obj.tolist()]
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_torch_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_torch_tree(v) for v in obj)
    return obj


def to_numpy_tree(obj: Any) -> Any:
    """Inverse of :func:`to_torch_tree` for the tensor leaves (CPU numpy arrays)."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu().numpy()
    if isinstance(obj, dict):
        return {k: to_numpy_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_numpy_tree(v) for v in obj)
    return obj


def previous_checkpoint_path(path: str | os.PathLike) -> Path:
    """Where the generation before ``path`` is kept: ``latest.pt`` -> ``previous.pt`` in the same folder
    (any other ``NAME.pt`` -> ``NAME.previous.pt``)."""
    path = Path(path)
    if path.stem == "latest":
        return path.with_name(f"previous{path.suffix}")
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def checkpoint_exists(path: str | os.PathLike) -> bool:
    """Whether ``path`` or its previous generation exists (what :func:`load_latest_checkpoint` reads)."""
    path = Path(path)
    return path.exists() or previous_checkpoint_path(path).exists()


class _HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through (``torch.save`` writes
    sequentially: ``write`` and ``flush`` only)."""

    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        self.size += len(view)
        return self._f.write(view)

    def flush(self) -> None:
        self._f.flush()


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors and plain values; numpy arrays are converted) atomically to ``path``.

    The archive and its checksum trailer go to one temporary file. Before it replaces ``path``, the
    current ``path`` becomes :func:`previous_checkpoint_path` (a hard link, so ``path`` exists
    throughout), unless its trailer is missing or disagrees with its size (a truncated file is not
    kept over a good previous one). A crash at any point leaves every name holding a complete file.
    """
    path = Path(path)
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **to_torch_tree(payload)}
    with atomic_open(path, "wb") as f:
        w = _HashingWriter(f)
        torch.save(data, w)
        f.write(_TRAILER.pack(TRAILER_MAGIC, w.sha256.digest(), w.size))
        if path.is_file() and _read_trailer(path) is not None:
            atomic_link(path, previous_checkpoint_path(path))


def _read_trailer(path: Path) -> tuple[bytes, int] | None:
    """``(digest, archive_length)`` if ``path`` ends in a trailer that fits its size, else None."""
    size = path.stat().st_size
    if size < TRAILER_SIZE:
        return None
    with open(path, "rb") as fh:
        fh.seek(size - TRAILER_SIZE)
        magic, digest, length = _TRAILER.unpack(fh.read(TRAILER_SIZE))
    if magic != TRAILER_MAGIC or length != size - TRAILER_SIZE:
        return None
    return digest, length


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def verify_checkpoint_file(path: str | os.PathLike) -> None:
    """Check ``path``'s trailer and the SHA-256 of its archive; raise :class:`CheckpointError` naming the
    file and the problem (missing, unreadable, no trailer, truncated, checksum mismatch)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size < TRAILER_SIZE:
                raise CheckpointError(
                    f"{path}: {size} bytes, too short for an rlmu checkpoint (truncated, or not a checkpoint)"
                )
            fh.seek(size - TRAILER_SIZE)
            magic, digest, length = _TRAILER.unpack(fh.read(TRAILER_SIZE))
            if magic != TRAILER_MAGIC:
                raise CheckpointError(
                    f"{path}: no checksum trailer at the end of the file (truncated, written without "
                    "checksums, or not an rlmu checkpoint)"
                )
            if length != size - TRAILER_SIZE:
                raise CheckpointError(
                    f"{path}: the trailer records an archive of {length} bytes, the file holds "
                    f"{size - TRAILER_SIZE} (cut or extended)"
                )
            fh.seek(0)
            h = hashlib.sha256()
            left = length
            while left:
                block = fh.read(min(left, 1 << 22))
                if not block:
                    raise CheckpointError(f"{path}: file shrank while it was read")
                h.update(block)
                left -= len(block)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if h.digest() != digest:
        raise CheckpointError(
            f"{path}: checksum mismatch (SHA-256 of the archive is {h.hexdigest()[:16]}..., the file "
            f"records {digest.hex()[:16]}...): the file is corrupt"
        )


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`: verify its checksum, then ``torch.load`` it
    with ``weights_only=True`` (no arbitrary pickle) and check its format and version.

    Any problem raises :class:`CheckpointError` with a one-line message that starts with the path:
    missing or unreadable file, checksum trailer missing or wrong, an archive torch cannot read, a foreign
    format or another checkpoint version.
    """
    path = Path(path)
    verify_checkpoint_file(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign archive
        raise CheckpointError(f"{path}: cannot read checkpoint ({_one_line(exc)})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not an rlmu training checkpoint (format {found!r})")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {data.get('version')!r}, this rlmu reads {CHECKPOINT_VERSION}"
        )
    return data


def load_latest_checkpoint(
    path: str | os.PathLike,
    validate: Callable[[dict[str, Any], Path], None] | None = None,
) -> tuple[dict[str, Any], Path, list[str]]:
    """Load ``path`` or, if it is missing or unusable, its previous generation.

    ``validate(payload, file)`` (optional) checks a payload against what the caller needs, e.g. with
    :func:`check_tree`; a :class:`CheckpointError`, ``KeyError``, ``TypeError`` or ``ValueError`` it
    raises rejects that file like a failed checksum does.

    Returns ``(payload, file_used, warnings)``: ``warnings`` names each newer file that was passed over
    and why (empty when ``path`` itself was used). Raises :class:`CheckpointError` naming every file and
    its problem when neither is usable (also when neither exists: check :func:`checkpoint_exists` first).
    Files are only read, never changed or removed.
    """
    path = Path(path)
    problems: list[str] = []
    for candidate in (path, previous_checkpoint_path(path)):
        try:
            payload = load_checkpoint(candidate)
            if validate is not None:
                try:
                    validate(payload, candidate)
                except (KeyError, TypeError, ValueError) as exc:
                    raise CheckpointError(f"{candidate}: does not fit this run ({_one_line(exc)})") from None
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        return payload, candidate, [f"{p}; using {candidate}" for p in problems]
    raise CheckpointError("no usable checkpoint: " + "; ".join(problems))


# ----------------------------------------------------------------------------------------------------
# Checking a payload against what the caller expects


ANY = object()  # a leaf of an expected tree that matches any value


@dataclass(frozen=True)
class TensorSpec:
    """An expected tensor leaf: ``shape`` with ``None`` for a free dimension, ``dtype`` or None for any."""

    shape: tuple[int | None, ...]
    dtype: torch.dtype | None = None

    @classmethod
    def like(cls, t: torch.Tensor | np.ndarray, free_dims: tuple[int, ...] = ()) -> TensorSpec:
        """The spec of ``t`` with the dimensions in ``free_dims`` left free (e.g. a buffer's fill level)."""
        t = torch.from_numpy(np.ascontiguousarray(t)) if isinstance(t, np.ndarray) else t
        shape = tuple(None if i in free_dims else int(n) for i, n in enumerate(t.shape))
        return cls(shape, t.dtype)


def _fmt_shape(shape) -> str:
    dims = ["*" if d is None else str(int(d)) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _tree_problems(expected: Any, got: Any, key: str, allow_extra: bool, out: list[str]) -> None:
    where = key or "(top level)"
    if expected is ANY or expected is None:
        return
    if isinstance(expected, np.ndarray):
        expected = TensorSpec.like(expected)
    elif isinstance(expected, torch.Tensor):
        expected = TensorSpec.like(expected)
    if isinstance(expected, TensorSpec):
        if isinstance(got, np.ndarray):
            got = torch.from_numpy(np.ascontiguousarray(got))
        if not isinstance(got, torch.Tensor):
            out.append(f"{where} is {type(got).__name__}, expected a tensor")
            return
        shape_ok = len(got.shape) == len(expected.shape) and all(
            e is None or e == g for e, g in zip(expected.shape, got.shape, strict=True)
        )
        if not shape_ok:
            out.append(f"{where} has shape {_fmt_shape(got.shape)}, expected {_fmt_shape(expected.shape)}")
        elif expected.dtype is not None and got.dtype != expected.dtype:
            out.append(f"{where} has dtype {got.dtype}, expected {expected.dtype}")
        return
    if isinstance(expected, type) or (
        isinstance(expected, tuple) and expected and all(isinstance(t, type) for t in expected)
    ):
        if not isinstance(got, expected):
            names = (
                expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
            )
            out.append(f"{where} is {type(got).__name__}, expected {names}")
        return
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            out.append(f"{where} is {type(got).__name__}, expected a mapping")
            return
        for k in expected:
            if k not in got:
                out.append(f"{key + '.' if key else ''}{k} is missing")
        if not allow_extra:
            for k in got:
                if k not in expected:
                    out.append(f"{key + '.' if key else ''}{k} is not expected")
        for k, v in expected.items():
            if k in got:
                _tree_problems(v, got[k], f"{key}.{k}" if key else str(k), allow_extra, out)
        return
    if isinstance(expected, list | tuple):
        if not isinstance(got, list | tuple):
            out.append(f"{where} is {type(got).__name__}, expected a list of {len(expected)}")
            return
        if len(got) != len(expected):
            out.append(f"{where} has {len(got)} entries, expected {len(expected)}")
            return
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            _tree_problems(e, g, f"{key}.{i}" if key else str(i), allow_extra, out)
        return
    # A plain value stands for its kind: bool, number, str.
    if isinstance(expected, bool):
        ok = isinstance(got, bool)
    elif isinstance(expected, int | float):
        ok = isinstance(got, int | float) and not isinstance(got, bool)
    elif isinstance(expected, str):
        ok = isinstance(got, str)
    else:
        ok = isinstance(got, type(expected))
    if not ok:
        out.append(f"{where} is {type(got).__name__}, expected {type(expected).__name__}")


def check_tree(expected: Any, got: Any, where: str | os.PathLike, *, allow_extra: bool = False) -> None:
    """Check that a loaded payload ``got`` has the keys, shapes and dtypes of ``expected``.

    ``expected`` is a nested structure of dicts, lists and leaves: a tensor or numpy array (same shape and
    dtype), a :class:`TensorSpec` (``None`` dimensions are free), a type or tuple of types (isinstance),
    :data:`ANY` or ``None`` (anything), or a plain value standing for its kind (bool, number, str). Dict
    keys must match exactly unless ``allow_extra`` (then extra keys in ``got`` are allowed).

    Raises :class:`CheckpointError` listing the problems with dotted keys, e.g. ``checkpoint
    runs/x/checkpoints/latest.pt: agent.critic.0.weight has shape (256, 7), expected (256, 6)``.
    """
    problems: list[str] = []
    _tree_problems(expected, got, "", allow_extra, problems)
    if problems:
        shown = problems[:5] + ([f"and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise CheckpointError(f"checkpoint {where}: " + "; ".join(shown))
