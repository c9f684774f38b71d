"""Checkpoint files: one ``torch.save`` archive per run, written atomically, read with ``weights_only=True``.

A checkpoint holds tensors and plain Python values only (dict, list, tuple, str, int, float, bool, None),
so loading never unpickles arbitrary objects. Numpy arrays (replay buffers, RNG states) are stored as
tensors and turned back into arrays by :func:`to_numpy_tree`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlmu.errors import CheckpointError
from rlmu.utils.io import atomic_open

CHECKPOINT_FORMAT = "rlmu-train-checkpoint"
CHECKPOINT_VERSION = 2


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


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors and plain values; numpy arrays are converted) atomically to ``path``."""
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **to_torch_tree(payload)}
    with atomic_open(path, "wb") as f:
        torch.save(data, f)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no arbitrary pickle)."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an rlmu training checkpoint")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {data.get('version')!r}, this rlmu reads {CHECKPOINT_VERSION}"
        )
    return data


# ----------------------------------------------------------------------------------------------------
# Global RNG states (torch, numpy's legacy global generator, Python's random)


def global_rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": np.asarray(n["key"]).astype(np.uint32), "pos": int(n["pos"])},
            "has_gauss": int(n["has_gauss"]),
            "gauss": float(n["gauss"]),
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _python_state_to_plain(st: tuple) -> list:
    version, internal, gauss = st
    return [int(version), [int(x) for x in internal], gauss]
