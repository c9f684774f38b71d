"""Configuration of the VIRL distance model and reward (METHODS section 3, VIRL)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class VirlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Network: conv frame encoder (MLP for state frames) -> e_t -> recurrent cell -> h_t.
    frame_embedding: int = Field(64, ge=1)
    rnn: Literal["gru", "lstm"] = "gru"
    rnn_hidden: int = Field(128, ge=1)
    grayscale: bool = False  # images only: encode the luminance channel instead of RGB
    conv_channels: tuple[int, ...] = (16, 32, 32)
    # Contrastive loss y*d + (1-y)*max(margin - d, 0) on the sequence and the frame distance.
    margin: float = Field(1.0, gt=0)
    loss_weight_sequence: float = Field(0.7, ge=0)
    loss_weight_frame: float = Field(0.1, ge=0)
    # The paper's remaining 0.2 went to auto-encoder terms: optional here.
    autoencoder: bool = False
    loss_weight_autoencoder: float = Field(0.2, ge=0)
    # Pair construction.
    noise_sigma: float = Field(0.05, ge=0)  # Gaussian pixel noise, on frames scaled to [0, 1]
    warp_speed_min: float = Field(0.5, gt=0)
    warp_speed_max: float = Field(2.0, gt=0)
    # A cropped demo keeps this fraction of the frames or more (padded), and always fewer than any time
    # warp shows: it leaves out one frame more than the warp speeds can (rlmu.virl.pairs.crop_max_kept).
    crop_min_fraction: float = Field(0.3, gt=0, lt=1)
    # Training.
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(16, ge=2)
    train_steps: int = Field(200, ge=0)  # distance-model updates per round
    # Reward r_t = -(w_seq * d_seq + w_frame * d_frame) (or exp(-.) of it), aligned by time index.
    reward_mode: Literal["both", "spatial_only", "temporal_only"] = "both"
    reward_weight_sequence: float = Field(0.7, ge=0)
    reward_weight_frame: float = Field(0.1, ge=0)
    reward_shaping: Literal["linear", "exp"] = "linear"

    @model_validator(mode="after")
    def _check(self) -> VirlConfig:
        if self.warp_speed_min > self.warp_speed_max:
            raise ValueError("warp_speed_min must not exceed warp_speed_max")
        if self.crop_min_fraction >= self.crop_max_fraction:
            raise ValueError(
                f"crop_min_fraction must be below {self.crop_max_fraction:g}: a crop keeps fewer frames than a "
                f"time warp at speeds [{self.warp_speed_min:g}, {self.warp_speed_max:g}] shows"
            )
        if not self.conv_channels or any(c < 1 for c in self.conv_channels):
            raise ValueError("conv_channels must be a non-empty list of positive integers")
        return self

    @property
    def crop_max_fraction(self) -> float:
        """The fraction of a long demo's frames the slowest or fastest time warp shows (a crop keeps less)."""
        return min(1.0, self.warp_speed_min, 1.0 / self.warp_speed_max)
