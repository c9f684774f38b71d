"""Random-shift augmentation (DrQ): pad by ``pad`` pixels with replicated borders, crop back to the input
size at a random offset.

Replicate padding followed by a crop equals reading the input at clamped indices, so no padded copy is made;
the gather runs on the uint8 frames (4x less memory traffic than on floats). ``draw_shifts`` draws the
offsets, ``shift`` applies given offsets, so that one offset can serve several frames (s and s' of a
transition, or a whole batch: ``agent.encoder.shift``).
"""

from __future__ import annotations

import torch


def draw_shifts(
    n: int, pad: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``n`` offsets (n, 2) (rows, columns), integers in [0, 2 pad] (a shift of offset - pad pixels)."""
    return torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=device)


def shift(frames: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift image b of ``frames`` (B, C, H, W), any dtype, by ``shifts[b] - pad`` pixels (``shifts`` (B, 2)
    from ``draw_shifts``). Returns a new tensor of the same shape and dtype."""
    if frames.dim() != 4:
        raise ValueError(f"random shift expects (B, C, H, W) frames, got shape {tuple(frames.shape)}")
    b, c, h, w = frames.shape
    rows = (torch.arange(h, device=frames.device) + shifts[:, :1] - pad).clamp_(0, h - 1)  # (B, H)
    cols = (torch.arange(w, device=frames.device) + shifts[:, 1:] - pad).clamp_(0, w - 1)  # (B, W)
    index = (rows[:, :, None] * w + cols[:, None, :]).reshape(b, 1, h * w).expand(b, c, h * w)
    return frames.reshape(b, c, h * w).gather(2, index).reshape(b, c, h, w)


def random_shift(frames: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image of ``frames`` (B, C, H, W), any dtype, by its own integer offset in [-pad, pad] on
    both axes. Returns a new tensor of the same shape and dtype. Offsets come from ``generator`` (which must
    live on ``frames.device``), or torch's global RNG when None."""
    if frames.dim() != 4:
        raise ValueError(f"random_shift expects (B, C, H, W) frames, got shape {tuple(frames.shape)}")
    if pad == 0:
        return frames
    return shift(frames, draw_shifts(frames.shape[0], pad, generator, frames.device), pad)
