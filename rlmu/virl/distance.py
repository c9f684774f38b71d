"""Training the recurrent Siamese distance with the contrastive loss."""

from __future__ import annotations

import numpy as np
import torch

from rlmu.virl.config import VirlConfig
from rlmu.virl.model import RecurrentSiamese
from rlmu.virl.pairs import make_pairs


def contrastive_loss(d: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean of ``y * d + (1 - y) * max(margin - d, 0)``; ``d`` is a distance, ``y`` 1 for positive pairs.

    ``d`` may have extra trailing dimensions (per time step); ``y`` broadcasts over them.
    """
    while y.dim() < d.dim():
        y = y.unsqueeze(-1)
    return torch.mean(y * d + (1.0 - y) * torch.clamp(margin - d, min=0.0))


class DistanceLearner:
    """Owns the distance model and its optimizer; retrained between policy rounds."""

    def __init__(self, frame_shape: tuple[int, ...], cfg: VirlConfig | None = None, device: str = "cpu"):
        self.cfg = cfg or VirlConfig()
        self.device = torch.device(device)
        self.model = RecurrentSiamese(frame_shape, self.cfg).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        self.updates = 0

    def loss(self, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted contrastive loss on the sequence and frame distances (+ optional auto-encoder)."""
        cfg = self.cfg
        d_seq, d_frame = self.model.distances(a, b)
        l_seq = contrastive_loss(d_seq, y, cfg.margin)
        l_frame = contrastive_loss(d_frame, y, cfg.margin)
        total = cfg.loss_weight_sequence * l_seq + cfg.loss_weight_frame * l_frame
        parts = {"loss_sequence": float(l_seq), "loss_frame": float(l_frame)}
        if cfg.autoencoder:
            l_ae = 0.5 * (self.model.reconstruction_loss(a) + self.model.reconstruction_loss(b))
            total = total + cfg.loss_weight_autoencoder * l_ae
            parts["loss_autoencoder"] = float(l_ae)
        parts["loss_distance"] = float(total)
        return total, parts

    def train(
        self,
        demo: np.ndarray,
        agent_rollouts: list[np.ndarray],
        other_videos: list[np.ndarray],
        rng: np.random.Generator,
        steps: int | None = None,
    ) -> dict[str, float]:
        """Run ``steps`` (default ``cfg.train_steps``) updates on freshly drawn pairs; mean losses."""
        steps = self.cfg.train_steps if steps is None else steps
        sums: dict[str, float] = {}
        self.model.train()
        for _ in range(steps):
            a, b, y = make_pairs(demo, agent_rollouts, other_videos, self.cfg.batch_size, rng, self.cfg)
            total, parts = self.loss(*(torch.as_tensor(v, device=self.device) for v in (a, b, y)))
            if not torch.isfinite(total):
                from rlmu.agent import DivergenceError

                raise DivergenceError("loss_distance", float(total), self.updates)
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            self.updates += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        self.model.eval()
        return {k: v / max(steps, 1) for k, v in sums.items()}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
