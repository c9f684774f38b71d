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
    """The shared encoder f_enc: the pixel encoder [released RLV] with random-shift augmentation, or, for
    state observations, a learned MLP (``state``), and an optional target copy (DrQ v1)."""

    channels: _Hidden = Field((16, 16, 32), description="output channels of the conv blocks")
    kernel: int = Field(5, ge=1, description="conv kernel size (odd; 'same' padding)")
    pool: int = Field(2, ge=1, description="max-pool size and stride after each conv")
    augment: bool = Field(True, description="random-shift augmentation of the RL batches")
    augment_pad: int = Field(4, ge=0, description="maximum shift in pixels (replicate padding)")
    shift: Literal["per_transition", "per_frame", "per_batch"] = Field(
        "per_transition",
        description=(
            "how random shifts are drawn: per_transition = one shift per transition, shared by s and s' "
            "(their difference stays motion, which the inverse model reads), independent across the batch "
            "(our default); per_frame = s and s' shifted independently (DrQ); per_batch = one shift for "
            "every frame of an update's RL batches [released]"
        ),
    )
    channels_last: bool = Field(
        True,
        description=(
            "run the convs in channels_last memory format: the same function, ~30% less CPU time per pixel "
            "update (max-pool is much faster in NHWC on CPU)"
        ),
    )
    state: bool = Field(
        True,
        description=(
            "state observations: a learned MLP encoder (state_hidden -> state_features, LayerNorm, tanh; "
            "beside the state itself with state_skip) shared by every head as the pixel encoder is (our "
            "choice; every variant of a task gets it). False: the encoder is the identity, and the "
            "generator, paired and MEM losses are refused (nothing they could train is read by the policy)"
        ),
    )
    state_hidden: _Hidden = Field((256,), description="hidden widths of the state encoder (ReLU)")
    state_features: int = Field(50, ge=1, description="feature dimension of the state encoder (tanh output)")
    state_layer_norm: bool = Field(
        True,
        description=(
            "LayerNorm before the state encoder's tanh (DrQ / SAC-AE's projection). Without it the critic "
            "drove 96% of the features into tanh's saturation in 16k Acrobot steps (docs/training.md)"
        ),
    )
    state_skip: bool = Field(
        True,
        description=(
            "the state encoder's output is the state itself beside the learned features, [s, f(s)] (the dense "
            "input of D2RL and OFENet): every head reads the state as it would without an encoder, and the "
            "learned features its losses train. False: f(s) alone, which the critic collapsed onto one point "
            "while every Acrobot reward was -1, so SAC never left the floor (docs/training.md)"
        ),
    )
    critic_trains: bool = Field(
        True,
        description=(
            "the critic loss trains the encoder (DrQ, SAC-AE, [released]). False: only the other losses "
            "that train it do (inverse model, generator, paired, MEM); with plain SAC the encoder then "
            "stays at its random initialisation"
        ),
    )
    target: bool = Field(
        False,
        description=(
            "keep a target encoder for the critic target, Polyak-averaged with the target critic (DrQ v1). "
            "Default False: the target critic reads the online encoder's features (DrQ-v2)"
        ),
    )
    target_tau: float | None = Field(
        None, gt=0.0, le=1.0, description="Polyak rate of the target encoder; None: sac.tau"
    )

    _channels = field_validator("channels", "state_hidden")(_check_hidden)

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
    paired_scale: float | None = Field(
        None, gt=0.0, description="scale of the paired loss; None: the task's paired_scale_by_task entry"
    )
    paired_scale_by_task: dict[str, float] = Field(
        {"push": 1e-6, "drawer": 1e-8},
        description=(
            "the paired-loss scale of each task when paired_scale is None [released]; a task not listed "
            "takes push's (the RLV paper's main task)"
        ),
    )
    per_loss_optimizers: bool = Field(
        True,
        description=(
            "True: one Adam per loss, as [released], with the scales above; False: losses summed with the "
            "summed_* scales, one Adam per parameter group"
        ),
    )
    # Summed mode: the [released] scales were tuned for separate Adams, where a scale acts only through
    # Adam's epsilon; in a sum they make the generator and paired terms negligible (1e-4 and 3e-5 of the
    # critic's encoder gradient on push). These defaults (our choice) put every term's encoder gradient at
    # initialisation between 1/30 and 3 times the critic's on push pixels and Acrobot (measured:
    # docs/training.md, "Loss scales in summed mode").
    summed_inverse_scale: float = Field(1.0, gt=0.0, description="summed mode: scale of the inverse loss")
    summed_discriminator_scale: float = Field(
        1.0, gt=0.0, description="summed mode: scale of the discriminator loss (its Adam sees it alone)"
    )
    summed_generator_scale: float = Field(1.0, gt=0.0, description="summed mode: scale of the generator loss")
    summed_paired_scale: float = Field(1e-2, gt=0.0, description="summed mode: scale of the paired loss")

    _inv = field_validator("inverse_hidden", "discriminator_hidden")(_check_hidden)

    @field_validator("discriminator_mode", mode="before")
    @classmethod
    def _off_is_not_false(cls, value):
        # YAML 1.1 reads a bare `off` as false (in a study file and in `key=off` on the command line).
        return "off" if value is False else value

    @field_validator("paired_scale_by_task")
    @classmethod
    def _positive_scales(cls, value: dict[str, float]) -> dict[str, float]:
        if "push" not in value or any(not v > 0 for v in value.values()):
            raise ValueError("must hold positive scales, push's among them (the fallback)")
        return value

    def paired_scale_for(self, task: str | None) -> float:
        """The paired-loss scale of per-loss mode for ``task`` (a short task name, or None: push's)."""
        if self.paired_scale is not None:
            return self.paired_scale
        return self.paired_scale_by_task.get(task or "push", self.paired_scale_by_task["push"])


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
    summed_loss_scale: float = Field(
        10.0, gt=0.0, description="c3 in summed mode (rlv.per_loss_optimizers = false; our choice, measured)"
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

    def dead_loss(self, pixels: bool) -> str | None:
        """The problem with an enabled loss that can only train parameters the policy never reads, as one
        line naming the loss, or None. Without a learned encoder (state observations, ``encoder.state =
        false``) the generator and paired losses train nothing and the discriminator and MEM losses only
        heads that nothing reads. (The discriminator of ``released`` mode is such a head by design: the
        [released] behaviour, kept as an option.)"""
        if pixels or self.encoder.state:
            return None
        why = "agent.encoder.state = false gives state observations no learned encoder to train"
        if self.rlv.enabled and self.rlv.discriminator_mode == "adversarial":
            return f"loss_generator (agent.rlv.discriminator_mode = adversarial): {why}"
        if self.rlv.enabled and self.rlv.paired:
            return f"loss_paired (agent.rlv.paired = true): {why}"
        if self.mem.enabled:
            return f"loss_mem (agent.mem.enabled = true): {why}"
        return None
