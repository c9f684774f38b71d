"""Recurrent Siamese network: one set of weights maps a sequence of frames to per-step embeddings.

A "frame" is an image ``(H, W, 3)`` uint8 (pixel tasks) or a state vector ``(D,)`` float (Acrobot).
For a batch of sequences ``(B, T, ...)`` the network returns

- ``e``: ``(B, T, frame_embedding)`` frame embeddings (the spatial representation), and
- ``h``: ``(B, T, rnn_hidden)`` recurrent states after each step (the temporal representation).

Both inputs of a pair go through the same module, so identical sequences have distance exactly 0.
"""

from __future__ import annotations

import torch
from torch import nn

from rlmu.virl.config import VirlConfig


class FrameEncoder(nn.Module):
    """Conv encoder for images (stride-2 3x3 convs) or an MLP for state frames -> ``frame_embedding``."""

    def __init__(self, frame_shape: tuple[int, ...], cfg: VirlConfig):
        super().__init__()
        self.pixels = len(frame_shape) == 3
        self.grayscale = cfg.grayscale and self.pixels
        if self.pixels:
            h, w, c = frame_shape
            layers: list[nn.Module] = []
            in_ch = 1 if self.grayscale else c
            for out_ch in cfg.conv_channels:
                layers += [nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), nn.ReLU()]
                in_ch = out_ch
            self.trunk = nn.Sequential(*layers, nn.Flatten())
            with torch.no_grad():
                n_flat = self.trunk(torch.zeros(1, 1 if self.grayscale else c, h, w)).shape[1]
            self.head = nn.Linear(n_flat, cfg.frame_embedding)
        else:
            (d,) = frame_shape
            self.trunk = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
            self.head = nn.Linear(128, cfg.frame_embedding)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, H, W, 3)`` uint8 or float in [0, 1] -> ``(N, C, H, W)`` float; state frames pass through."""
        if not self.pixels:
            return frames.float()
        x = frames.float()
        if frames.dtype == torch.uint8:
            x = x / 255.0
        x = x.permute(0, 3, 1, 2)
        if self.grayscale:
            x = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        return x

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(self.preprocess(frames)))


class FrameDecoder(nn.Module):
    """Optional auto-encoder head: reconstruct the (preprocessed) frame from ``e_t``."""

    def __init__(self, n_out: int, cfg: VirlConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cfg.frame_embedding, 256), nn.ReLU(), nn.Linear(256, n_out))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.net(e)


class RecurrentSiamese(nn.Module):
    def __init__(self, frame_shape: tuple[int, ...], cfg: VirlConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VirlConfig()
        self.frame_shape = tuple(frame_shape)
        self.frame_encoder = FrameEncoder(self.frame_shape, cfg)
        rnn_cls = nn.GRU if cfg.rnn == "gru" else nn.LSTM
        self.rnn = rnn_cls(cfg.frame_embedding, cfg.rnn_hidden, batch_first=True)
        self.decoder = None
        if cfg.autoencoder:
            if self.frame_encoder.pixels:
                h, w, c = self.frame_shape
                n_out = h * w * (1 if cfg.grayscale else c)
            else:
                n_out = self.frame_shape[0]
            self.decoder = FrameDecoder(n_out, cfg)

    def forward(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``seq``: ``(B, T, *frame_shape)`` -> ``(e (B,T,E), h (B,T,R))``."""
        if tuple(seq.shape[2:]) != self.frame_shape:
            raise ValueError(f"expected frames of shape {self.frame_shape}, got {tuple(seq.shape[2:])}")
        b, t = seq.shape[:2]
        e = self.frame_encoder(seq.reshape(b * t, *self.frame_shape)).reshape(b, t, -1)
        h, _ = self.rnn(e)
        return e, h

    def distances(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step distances of two equally long batches of sequences.

        Returns ``d_seq (B, T) = ||h^a_t - h^b_t||`` and ``d_frame (B, T) = ||e^a_t - e^b_t||``.
        """
        if a.shape[:2] != b.shape[:2]:
            raise ValueError(
                f"sequences must have equal batch and length, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        n = a.shape[0]
        e, h = self(torch.cat([a, b], dim=0))  # one pass through the shared weights
        d_frame = torch.linalg.vector_norm(e[:n] - e[n:], dim=-1)
        d_seq = torch.linalg.vector_norm(h[:n] - h[n:], dim=-1)
        return d_seq, d_frame

    def reconstruction_loss(self, seq: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error of the optional auto-encoder head."""
        if self.decoder is None:
            raise RuntimeError("the auto-encoder head is disabled (VirlConfig.autoencoder=false)")
        b, t = seq.shape[:2]
        flat = seq.reshape(b * t, *self.frame_shape)
        target = self.frame_encoder.preprocess(flat).reshape(b * t, -1)
        recon = self.decoder(self.frame_encoder(flat))
        return torch.mean((recon - target) ** 2)
