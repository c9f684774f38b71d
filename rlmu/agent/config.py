"""Typed, validated configuration of the agent (METHODS section 3).

Every number of METHODS section 3 is a field here; unknown keys and out-of-range values are rejected with a
message that names the field (pydantic's ``ValidationError`` lists ``section.field``). The three variants
are configurations of one agent:

- SAC:  ``rlv.enabled = False``, ``mem.enabled = False``
- RLV:  ``rlv.enabled = True``,  ``rlv.paired = True``,  ``mem.enabled = False``
- RLMU: ``rlv.enabled = True``,  ``rlv.paired = False``, ``mem.enabled = True``

Defaults marked "our choice" are not given by the papers or the released code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_Hidden = tuple[int, ...]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_hidden(value: _Hidden) -> _Hidden:
    if len(value) == 0 or any(h < 1 for h in value):
        raise ValueError("must be a non-empty list of positive layer widths")
    return value


class SACConfig(_Section):
    """Soft actor-critic (Haarnoja et al. 2018), METHODS section 3 "SAC"."""

    gamma: float = Field(0.99, gt=0.0, le=1.0, description="discount factor")
    tau: float = Field(5e-3, gt=0.0, le=1.0, description="Polyak rate of the target critic")
    lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of every optimizer except MEM's")
    adam_eps: float = Field(
        1e-8, gt=0.0, description="Adam epsilon; with per-loss optimizers a loss scale acts only through it"
    )
    batch_size: int = Field(256, ge=1, description="interaction transitions per update")
    log_std_min: float = Field(-20.0, description="lower clip of the policy's log standard deviation")
    log_std_max: float = Field(2.0, description="upper clip of the policy's log standard deviation")
    init_log_alpha: float = Field(0.0, description="initial log temperature")
    target_entropy: float | None = Field(None, description="entropy target; None means -|A|")
    hidden: _Hidden = Field((512, 256, 256), description="hidden widths of the actor and critic MLPs")
    target_update_period: int = Field(1, ge=1, description="updates between Polyak target updates")
    actor_updates_encoder: bool = Field(
        False,
        description=(
            "let the actor loss train the shared encoder. Default False (our choice, as DrQ/SAC-AE): the actor "
            "reads detached features, so only the critic, inverse, domain and MEM losses shape the encoder"
        ),
    )

    _hidden = field_validator("hidden")(_check_hidden)

    @model_validator(mode="after")
    def _log_std_range(self) -> SACConfig:
        if not self.log_std_min < self.log_std_max:
            raise ValueError(
                f"sac.log_std_min ({self.log_std_min}) must be below sac.log_std_max ({self.log_std_max})"
            )
        return self


class EncoderConfig(_Section):
    """Pixel encoder [released RLV] and DrQ random-shift augmentation. Ignored for state observations."""

    channels: _Hidden = Field((16, 16, 32), description="output channels of the conv blocks")
    kernel: int = Field(5, ge=1, description="conv kernel size (odd; 'same' padding)")
    pool: int = Field(2, ge=1, description="max-pool size and stride after each conv")
    augment: bool = Field(True, description="random-shift augmentation of the RL batches")
    augment_pad: int = Field(4, ge=0, description="maximum shift in pixels (replicate padding), per sample")
    channels_last: bool = Field(
        True,
        description=(
            "run the convs in channels_last memory format: the same function, ~30% less CPU time per pixel "
            "update (max-pool is much faster in NHWC on CPU)"
        ),
    )

    _channels = field_validator("channels")(_check_hidden)

    @field_validator("kernel")
    @classmethod
    def _odd_kernel(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd so that 'same' padding is symmetric")
        return value


class RLVConfig(_Section):
    """RL with videos (Schmeckpeper et al. 2020), METHODS section 3 "RLV"."""

    enabled: bool = False
    obs_batch_size: int = Field(256, ge=1, description="observation transitions per update")
    inverse_hidden: _Hidden = Field((64, 64, 64), description="hidden widths of the inverse model")
    inverse_output_tanh: bool = Field(
        True, description="squash inverse-model actions into [-1, 1], the action box (our choice)"
    )
    inverse_scale: float = Field(1.0, gt=0.0, description="weight c of the inverse-model loss (Eq. 1)")
    discriminator_hidden: _Hidden = Field((64, 64, 64), description="hidden widths of the discriminator")
    discriminator_mode: Literal["adversarial", "released", "off"] = Field(
        "adversarial",
        description=(
            "adversarial: the encoder is trained to confuse the discriminator (Eq. 3-4); released: the "
            "discriminator sees detached features, the encoder gets no adversarial signal; off: no discriminator"
        ),
    )
    generator_loss: Literal["flipped_labels", "reversal"] = Field(
        "flipped_labels",
        description=(
            "encoder objective in adversarial mode: flipped_labels = BCE with inverted domain labels (ADDA, "
            "non-saturating; our default); reversal = -BCE, the literal max of Eq. 4 (gradient reversal)"
        ),
    )
    generator_scale: float = Field(1e-3, gt=0.0, description="scale of the generator loss [released]")
    discriminator_scale: float = Field(1e-8, gt=0.0, description="scale of the discriminator loss [released]")
    paired: bool = Field(False, description="use the paired loss (Eq. 2) on paired robot/human frames")
    paired_scale: float = Field(
        1e-6, gt=0.0, description="scale of the paired loss: 1e-6 push, 1e-8 drawer [released]"
    )
    per_loss_optimizers: bool = Field(
        True,
        description=(
            "True: one Adam per loss, as [released]; False: losses summed (with their scales), one Adam per "
            "parameter group"
        ),
    )

    _inv = field_validator("inverse_hidden", "discriminator_hidden")(_check_hidden)


class MEMConfig(_Section):
    """Motion Extractor Module (RLMU report section 3.1, Eq. 6-7)."""

    enabled: bool = False
    n_classes: int = Field(8, ge=2, description="K position classes (bins of the start frame m)")
    subseq_len: int = Field(8, ge=1, description="k frames per sub-sequence")
    lstm_layers: int = Field(3, ge=1, description="LSTM layers (report: 3)")
    lstm_hidden: int = Field(256, ge=1, description="LSTM hidden size (our default)")
    batch_size: int = Field(32, ge=1, description="sub-sequences per MEM batch (our choice)")
    pretrain_steps: int = Field(5000, ge=0, description="encoder + MEM pre-training steps before RL")
    loss_scale: float = Field(
        1.0,
        gt=0.0,
        description="c3 of Eq. 7 (our choice: 1.0, equal weight with the inverse loss; the report gives none)",
    )
    period: int = Field(1, ge=1, description="add c3 * L_mem to the objective every `period` updates")
    lr: float = Field(3e-4, gt=0.0, description="Adam learning rate of MEM pre-training and the MEM loss")


class AgentConfig(_Section):
    """The whole agent. Nested sections: ``sac``, ``encoder``, ``rlv``, ``mem``."""

    sac: SACConfig = SACConfig()
    encoder: EncoderConfig = EncoderConfig()
    rlv: RLVConfig = RLVConfig()
    mem: MEMConfig = MEMConfig()

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        if self.rlv.paired and not self.rlv.enabled:
            raise ValueError("rlv.paired = true needs rlv.enabled = true (the paired loss is part of RLV)")
        return self
