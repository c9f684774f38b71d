"""Training the recurrent Siamese distance with the contrastive loss."""

from __future__ import annotations

import numpy as np
import torch

from rlmu.virl.config import VirlConfig
from rlmu.virl.model import RecurrentSiamese
from rlmu.virl.pairs import as_float, fit_length, make_pairs


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

    def pair_distances(
        self, a: torch.Tensor, b: torch.Tensor, shared_first: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``d_seq, d_frame`` ``(B, T)`` of pairs ``(a_i, b_i)``.

        ``shared_first`` (bool ``(B,)``, optional) marks rows of ``a`` that are all the same sequence (the
        demonstration, first element of most pairs): it is encoded once instead of once per pair, which
        gives the same distances and gradients at a fraction of the cost for long pixel sequences.
        """
        if shared_first is None or int(np.sum(shared_first)) < 2:
            return self.model.distances(a, b)
        if a.shape[:2] != b.shape[:2]:
            raise ValueError(
                f"sequences must have equal batch and length, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        n = a.shape[0]
        shared = np.flatnonzero(shared_first)
        rest = np.flatnonzero(~np.asarray(shared_first, dtype=bool))
        e, h = self.model(torch.cat([a[shared[:1]], a[rest], b], dim=0))
        row = np.empty(n, dtype=np.int64)  # row of ``e``/``h`` that encodes a_i
        row[shared] = 0
        row[rest] = 1 + np.arange(len(rest))
        row_t = torch.as_tensor(row, device=e.device)
        m = 1 + len(rest)
        d_frame = torch.linalg.vector_norm(e[row_t] - e[m:], dim=-1)
        d_seq = torch.linalg.vector_norm(h[row_t] - h[m:], dim=-1)
        return d_seq, d_frame

    def loss(
        self, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, shared_first: np.ndarray | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted contrastive loss on the sequence and frame distances (+ optional auto-encoder)."""
        cfg = self.cfg
        d_seq, d_frame = self.pair_distances(a, b, shared_first)
        l_seq = contrastive_loss(d_seq, y, cfg.margin)
        l_frame = contrastive_loss(d_frame, y, cfg.margin)
        total = cfg.loss_weight_sequence * l_seq + cfg.loss_weight_frame * l_frame
        parts = {"loss_sequence": float(l_seq.detach()), "loss_frame": float(l_frame.detach())}
        if cfg.autoencoder:
            l_ae = 0.5 * (self.model.reconstruction_loss(a) + self.model.reconstruction_loss(b))
            total = total + cfg.loss_weight_autoencoder * l_ae
            parts["loss_autoencoder"] = float(l_ae.detach())
        parts["loss_distance"] = float(total.detach())
        return total, parts

    def train(
        self,
        demo: np.ndarray,
        agent_rollouts: list[np.ndarray],
        other_videos: list[np.ndarray],
        rng: np.random.Generator,
        steps: int | None = None,
        agent_rounds: list[int] | None = None,
    ) -> dict[str, float]:
        """Run ``steps`` (default ``cfg.train_steps``) updates on freshly drawn pairs; mean losses.

        ``agent_rounds``: the policy round of each agent rollout (``make_pairs``; None: one round).
        """
        steps = self.cfg.train_steps if steps is None else steps
        sums: dict[str, float] = {}
        self.model.train()
        demo_f = fit_length(as_float(demo), len(demo))  # how make_pairs presents the demo
        for _ in range(steps):
            a, b, y = make_pairs(
                demo, agent_rollouts, other_videos, self.cfg.batch_size, rng, self.cfg, agent_rounds
            )
            is_demo = np.array([np.array_equal(row, demo_f) for row in a])
            a_t, b_t, y_t = (torch.as_tensor(v, device=self.device) for v in (a, b, y))
            total, parts = self.loss(a_t, b_t, y_t, shared_first=is_demo)
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
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
