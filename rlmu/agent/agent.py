"""One agent for SAC, RLV and RLMU (METHODS section 3), training a *pack* of K seeds in lockstep; the
optional parts are switched on by ``AgentConfig``.

Every tensor has a leading pack axis: member k's networks, optimizer state and random generator are its own,
built from its seed as a pack of one would build them (``rlmu.agent.networks``), and every loss comes out per
member, ``(K,)``. A seed trained alone is a pack of one.

Update (``Agent.update``), every number from the config:

1. Encode with the shared encoder f_enc: the pixel encoder, or for state observations a learned MLP
   (``encoder.state``, default on, so every variant of a state task has the same architecture; off: the
   identity). Pixel batches are random-shifted (``augment``), by ``encoder.shift``: ``per_transition`` (one
   offset per transition, shared by s and s', so s' - s stays the motion the inverse model reads; the
   default), ``per_frame`` (s and s' independently, DrQ) or ``per_batch`` (one offset per update for every
   RL frame, [released]); paired and MEM frames are not shifted; each member draws from its own generator.
   Each frame is encoded once: s_int, s_obs, s'_int with gradients (s'_int feeds the inverse loss), s'_obs
   without (it only feeds the critic target and the inverse model's detached action labels). Plain SAC: s
   with gradients, s' without. With ``encoder.target`` (DrQ v1) the critic target reads s' through a target
   encoder instead.
2. Losses, all at the same parameters (``losses.py``), one small method each:
   - ``critic_loss``: twin-Q soft TD on all 256 + 256 transitions; the observation actions are the inverse
     model's predictions, detached; the target uses the target critic on the online encoder's features of
     s' (no gradient, as DrQ-v2), or on the target encoder's (``encoder.target``, as DrQ v1).
   - ``actor_loss``, ``alpha_loss``: SAC policy and temperature losses on all transitions. The actor reads
     detached features by default (``sac.actor_updates_encoder = False``, as DrQ / SAC-AE) and the critic
     with its parameters held constant (LeanRL), so its gradient reaches the actor only.
   - ``inverse_loss`` (Eq. 1), interaction transitions only.
   - ``discriminator_loss``: BCE on f_enc(s) of both batches (interaction 0, observation 1). ``released``
     mode feeds it detached features.
   - ``generator_loss`` (``adversarial`` mode): the encoder's adversarial objective (flipped labels or
     reversal, ``rlv.generator_loss``).
   - ``paired_loss`` (Eq. 2) on the paired frames, un-augmented.
   - ``mem_loss`` (Eq. 6) every ``mem.period`` updates on a MEM batch, un-augmented.
3. Every loss value of every member is read from the device once and checked; a member with a non-finite
   loss is reported (``UpdateResult.diverged``) and its losses are masked out of this and every later update,
   so no parameter of the pack moves by a non-finite amount; the other members go on.
4. Gradients: each loss with ordinary autograd with respect to its own parameter groups only
   (``LOSS_GROUPS``), all at the same parameters, then every optimizer steps (the simultaneous update of the
   [released] graph):

   ====================  =============================  ==========================
   loss                  parameter groups               scale
   ====================  =============================  ==========================
   loss_critic           encoder, critic                1
   loss_actor            actor (+ encoder, if enabled)  1
   loss_alpha            log_alpha                      1
   loss_inverse          encoder, inverse_model         rlv.inverse_scale
   loss_discriminator    discriminator                  rlv.discriminator_scale
   loss_generator        encoder                        rlv.generator_scale
   loss_paired           encoder                        rlv.paired_scale
   loss_mem              encoder, motion_extractor      mem.loss_scale (c3)
   ====================  =============================  ==========================

   ``rlv.per_loss_optimizers = True`` ([released]): one Adam per active loss over that loss's groups, so
   the encoder has one Adam state per loss that touches it and a loss scale acts only through Adam's
   epsilon; the paired scale follows the task (``rlv.paired_scale_by_task``) unless ``rlv.paired_scale``
   is set. ``False``: the scaled gradients are summed per parameter and one Adam per group steps, with
   summed mode's own scales (``rlv.summed_*_scale``, ``mem.summed_loss_scale``). Learning
   rates: ``sac.lr``, except the MEM optimizer / the motion_extractor group (``mem.lr``). Adam is
   elementwise, so a member's step never reads another member's numbers.
5. Polyak update of the target critic (and target encoder, rate ``encoder.target_tau``) every
   ``sac.target_update_period`` updates.

The first update also reports each encoder-training loss's gradient norm on each member's encoder
(``UpdateResult.encoder_grad_norms``; the trainer writes it to ``first_update.csv``).

``pretrain_mem_step`` trains encoder + MEM on Eq. 6 alone with its own Adam (``mem.lr``).

Randomness: member k's initial parameters come from ``torch.manual_seed(seeds[k])`` (inside
``torch.random.fork_rng``, so the global generator is left as it was). Every draw afterwards (augmentation
shifts, policy noise in ``act`` and ``update``) comes from member k's own ``torch.Generator``
(``Agent.rngs[k]``), seeded at construction and saved in ``state_dict``, so a checkpoint resumes the exact
random streams.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rlmu.agent import losses as L
from rlmu.agent.augment import draw_shifts, shift
from rlmu.agent.config import AgentConfig
from rlmu.agent.networks import (
    Actor,
    ConvEncoder,
    Critic,
    Discriminator,
    Encoder,
    InverseModel,
    MemberMotionExtractor,
    MotionExtractor,
    mlp,
    state_encoder,
)
from rlmu.errors import UserError

LOSS_GROUPS: dict[str, tuple[str, ...]] = {
    "loss_critic": ("encoder", "critic"),
    "loss_actor": ("actor",),
    "loss_alpha": ("log_alpha",),
    "loss_inverse": ("encoder", "inverse_model"),
    "loss_discriminator": ("discriminator",),
    "loss_generator": ("encoder",),
    "loss_paired": ("encoder",),
    "loss_mem": ("encoder", "motion_extractor"),
}

STATE_KEYS = ("seeds", "update_step", "mem_pretrain_step", "rngs", "log_alpha", "networks", "optimizers")


@dataclass
class UpdateResult:
    """What one update reports: every active loss (and ``alpha``) per member, (K,) float arrays (NaN for a
    member already out of the pack), and the members whose losses turned non-finite in this update, as
    ``(member index, loss name, value)``."""

    values: dict[str, np.ndarray]
    diverged: list[tuple[int, str, float]]
    # The first update of the agent only: each encoder-training loss -> (K,) norms of its scaled gradient
    # with respect to each member's encoder parameters (``Agent.encoder_grad_norms``); otherwise None.
    encoder_grad_norms: dict[str, np.ndarray] | None = None


class Agent:
    """SAC + optional RLV / RLMU parts for a pack of seeds. See the module docstring for the update.

    Args:
        cfg: the agent configuration (an ``AgentConfig`` or a mapping validated into one).
        obs_shape: (C, H, W) for uint8 pixel observations or (D,) for float state observations.
        action_dim: |A|; actions live in [-1, 1]^A.
        device: torch device for networks and batches.
        seeds: the members' seeds (a pack of one: ``(seed,)``).
        task: the task's short name (``push``, ``drawer``, ...), which picks the task-dependent defaults
            (``rlv.paired_scale_by_task``); None: push's.

    A configuration in which an enabled loss can only train parameters the policy never reads (the
    generator, paired or MEM loss with an identity state encoder) is refused (``UserError``).
    """

    def __init__(
        self,
        cfg: AgentConfig | Mapping,
        obs_shape: tuple[int, ...],
        action_dim: int,
        device: str | torch.device = "cpu",
        seeds: Sequence[int] = (0,),
        task: str | None = None,
    ):
        self.cfg = cfg if isinstance(cfg, AgentConfig) else AgentConfig.model_validate(cfg)
        if int(action_dim) < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        if len(seeds) < 1 or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.action_dim = int(action_dim)
        self.device = torch.device(device)
        self.seeds = tuple(int(s) for s in seeds)
        self.n_members = len(self.seeds)
        self.task = task
        problem = self.cfg.dead_loss(pixels=len(self.obs_shape) == 3)
        if problem:
            raise UserError(problem)

        members = [self._member_networks(seed) for seed in self.seeds]
        sac, rlv, mem = self.cfg.sac, self.cfg.rlv, self.cfg.mem
        enc = self.cfg.encoder
        self.encoder = Encoder(
            self.obs_shape,
            self.n_members,
            enc.channels,
            enc.kernel,
            enc.pool,
            enc.channels_last,
            members=[m["encoder"] for m in members] if "encoder" in members[0] else None,
            skip=enc.state_skip,
        )
        self.is_pixel = self.encoder.is_pixel
        # DrQ v1's target encoder: a copy read only by the critic target, Polyak-averaged like the target critic.
        self.encoder_target = (
            copy.deepcopy(self.encoder).requires_grad_(False) if enc.target and self.encoder.learned else None
        )
        self.actor = Actor([m["actor"] for m in members], sac.log_std_min, sac.log_std_max)
        self.critic = Critic([m["q1"] for m in members], [m["q2"] for m in members])
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.inverse_model = (
            InverseModel([m["inverse_model"] for m in members], rlv.inverse_output_tanh)
            if rlv.enabled
            else None
        )
        self.discriminator = (
            Discriminator([m["discriminator"] for m in members])
            if rlv.enabled and rlv.discriminator_mode != "off"
            else None
        )
        self.motion_extractor = (
            MotionExtractor([m["motion_extractor"] for m in members]) if mem.enabled else None
        )
        for net in self.networks.values():
            net.to(self.device)
        # One temperature per member, each its own leaf tensor (see ``networks.PackLinear``).
        self.log_alphas = [
            torch.tensor(sac.init_log_alpha, device=self.device, requires_grad=True) for _ in self.seeds
        ]
        self._group_params = {"log_alpha": list(self.log_alphas)}
        for name, net in self.networks.items():
            self._group_params[name] = list(net.parameters())
        self.target_entropy = (
            float(sac.target_entropy) if sac.target_entropy is not None else -float(action_dim)
        )
        self.rngs = []
        for m in members:
            g = torch.Generator(device=self.device)
            g.manual_seed(m["rng_seed"])
            self.rngs.append(g)
        self.update_step = 0
        self.mem_pretrain_step = 0
        # Members still training; a member whose loss turned non-finite is masked out for good.
        self.active = np.ones(self.n_members, dtype=bool)

        self.loss_groups = self._active_loss_groups()
        if rlv.per_loss_optimizers:  # [released] scales, each acting through its own Adam
            scales = (rlv.inverse_scale, rlv.discriminator_scale, rlv.generator_scale)
            scales += (rlv.paired_scale_for(task), mem.loss_scale)
        else:  # summed mode's own scales
            scales = (rlv.summed_inverse_scale, rlv.summed_discriminator_scale, rlv.summed_generator_scale)
            scales += (rlv.summed_paired_scale, mem.summed_loss_scale)
        self.loss_scales = {"loss_critic": 1.0, "loss_actor": 1.0, "loss_alpha": 1.0}
        names = ("loss_inverse", "loss_discriminator", "loss_generator", "loss_paired", "loss_mem")
        self.loss_scales.update(zip(names, scales, strict=True))
        self.optimizers = self._build_optimizers()
        # Every parameter is one member's own tensor: parameter -> member index.
        self._member_of: dict[torch.Tensor, int] = {p: k for k, p in enumerate(self.log_alphas)}
        for net in self.networks.values():
            for module in net.modules():
                members = getattr(module, "members", None)
                if isinstance(members, nn.ModuleList):  # PackLinear, Encoder, MotionExtractor
                    for i, member in enumerate(members):  # the critic's: the Q1s, then the Q2s
                        for p in member.parameters():
                            self._member_of.setdefault(p, i % self.n_members)

    # ----------------------------------------------------------------------------------------- structure
    def _member_networks(self, seed: int) -> dict:
        """One member's networks as ordinary modules, initialised from ``torch.manual_seed(seed)`` in a fixed
        order, and the seed of its generator (drawn last)."""
        sac, enc, rlv, mem = self.cfg.sac, self.cfg.encoder, self.cfg.rlv, self.cfg.mem
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets: dict = {}
            if len(self.obs_shape) == 3:
                nets["encoder"] = ConvEncoder(self.obs_shape, enc.channels, enc.kernel, enc.pool)
                repr_dim = nets["encoder"].repr_dim
            elif enc.state:
                nets["encoder"] = state_encoder(
                    self.obs_shape[0], enc.state_hidden, enc.state_features, enc.state_layer_norm
                )
                repr_dim = enc.state_features + (self.obs_shape[0] if enc.state_skip else 0)
            else:
                repr_dim = self.obs_shape[0]
            nets["actor"] = mlp(repr_dim, sac.hidden, 2 * self.action_dim)
            nets["q1"] = mlp(repr_dim + self.action_dim, sac.hidden, 1)
            nets["q2"] = mlp(repr_dim + self.action_dim, sac.hidden, 1)
            if rlv.enabled:
                nets["inverse_model"] = mlp(2 * repr_dim, rlv.inverse_hidden, self.action_dim)
                if rlv.discriminator_mode != "off":
                    nets["discriminator"] = mlp(repr_dim, rlv.discriminator_hidden, 1)
            if mem.enabled:
                nets["motion_extractor"] = MemberMotionExtractor(
                    repr_dim, mem.n_classes, mem.lstm_hidden, mem.lstm_layers
                )
            nets["rng_seed"] = int(torch.randint(0, 2**62, (1,)).item())
        return nets

    @property
    def networks(self) -> dict[str, nn.Module]:
        nets = {
            "encoder": self.encoder,
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }
        for name in ("encoder_target", "inverse_model", "discriminator", "motion_extractor"):
            if getattr(self, name) is not None:
                nets[name] = getattr(self, name)
        return nets

    def group_params(self, group: str) -> list[torch.Tensor]:
        """The parameters of one group (a network name, or ``log_alpha``). The modules never change after
        construction, so the lists are built once."""
        return self._group_params.get(group, [])

    def _active_loss_groups(self) -> dict[str, tuple[str, ...]]:
        """Active losses -> parameter groups with parameters (an identity state encoder has none; the
        configurations whose losses would then train nothing the policy reads are refused at construction)."""
        rlv, mem = self.cfg.rlv, self.cfg.mem
        active = ["loss_critic", "loss_actor", "loss_alpha"]
        if rlv.enabled:
            active.append("loss_inverse")
            if rlv.discriminator_mode != "off":
                active.append("loss_discriminator")
            if rlv.discriminator_mode == "adversarial":
                active.append("loss_generator")
            if rlv.paired:
                active.append("loss_paired")
        if mem.enabled:
            active.append("loss_mem")
        result = {}
        for name in active:
            groups = LOSS_GROUPS[name]
            if name == "loss_actor" and self.cfg.sac.actor_updates_encoder:
                groups = ("encoder", *groups)
            if name == "loss_critic" and not self.cfg.encoder.critic_trains:
                groups = tuple(g for g in groups if g != "encoder")
            groups = tuple(g for g in groups if self.group_params(g))
            if groups:
                result[name] = groups
        return result

    def _adam(self, params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
        # The fused kernel is the same Adam update in one pass over all tensors (CPU and CUDA).
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.Adam(params, lr=lr, eps=self.cfg.sac.adam_eps, fused=fused)

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Per-loss mode: ``loss_*``, one Adam per active loss over its groups. Summed mode: ``group_*``, one
        Adam per parameter group. With MEM: ``mem_pretrain`` over encoder + motion_extractor."""
        sac, mem = self.cfg.sac, self.cfg.mem
        opts: dict[str, torch.optim.Optimizer] = {}
        if self.cfg.rlv.per_loss_optimizers:
            for name, groups in self.loss_groups.items():
                params = [p for g in groups for p in self.group_params(g)]
                opts[name] = self._adam(params, mem.lr if name == "loss_mem" else sac.lr)
        else:
            groups = dict.fromkeys(g for gs in self.loss_groups.values() for g in gs)
            for group in groups:
                lr = mem.lr if group == "motion_extractor" else sac.lr
                opts[f"group_{group}"] = self._adam(self.group_params(group), lr)
        if mem.enabled:
            params = [*self.group_params("encoder"), *self.group_params("motion_extractor")]
            opts["mem_pretrain"] = self._adam(params, mem.lr)
        return opts

    @property
    def log_alpha(self) -> torch.Tensor:
        """The members' log temperatures as one (K, 1) tensor (with gradient to each member's own)."""
        return torch.stack(self.log_alphas).unsqueeze(1)

    @property
    def alpha(self) -> torch.Tensor:
        """The members' temperatures, (K, 1), without gradient."""
        return self.log_alpha.detach().exp()

    def mem_due(self) -> bool:
        """Whether the next ``update`` adds the MEM loss (and so needs ``mem_batch``)."""
        return self.cfg.mem.enabled and self.update_step % self.cfg.mem.period == 0

    # ------------------------------------------------------------------------------------------- batches
    def _tensor(self, batch: Mapping, key: str, where: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        if key not in batch:
            raise KeyError(f"{where} batch has no key {key!r} (keys: {sorted(batch)})")
        value = torch.as_tensor(batch[key]).to(self.device, non_blocking=True)
        if value.shape[0] != self.n_members:
            raise ValueError(
                f"{where} batch {key!r} has shape {tuple(value.shape)}: its first axis must be the pack's "
                f"{self.n_members} members"
            )
        return value.to(dtype) if dtype is not None and value.dtype != dtype else value

    def _frames(self, batch: Mapping, key: str, where: str) -> torch.Tensor:
        """Observations of ``batch[key]``: uint8 (K, ..., C, H, W) for pixels, (K, ..., D) for state."""
        value = self._tensor(batch, key, where)
        n = len(self.obs_shape)
        if tuple(value.shape[-n:]) != self.obs_shape:
            raise ValueError(
                f"{where} batch {key!r} has shape {tuple(value.shape)}, expected (K, ..., {self.obs_shape})"
            )
        if self.is_pixel and value.dtype != torch.uint8:
            raise ValueError(f"{where} batch {key!r} must hold uint8 frames in [0, 255], got {value.dtype}")
        return value if self.is_pixel else value.float()

    def _augments(self) -> bool:
        return self.is_pixel and self.cfg.encoder.augment and self.cfg.encoder.augment_pad > 0

    def _draw_shifts(self, n: int) -> list[torch.Tensor]:
        """n shift offsets (n, 2) per member, each from the member's own generator."""
        pad = self.cfg.encoder.augment_pad
        return [draw_shifts(n, pad, g, self.device) for g in self.rngs]

    def _augment(
        self, obs: torch.Tensor, next_obs: torch.Tensor, batch_shifts: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random shift of the (K, B, C, H, W) frames s and s' of a batch of transitions, by
        ``encoder.shift``: ``per_transition``, one offset per transition for both; ``per_frame``, s's
        offsets, then s''s; ``per_batch``, the update's one offset per member (``batch_shifts``)."""
        if not self._augments():
            return obs, next_obs
        pad, mode, b = self.cfg.encoder.augment_pad, self.cfg.encoder.shift, obs.shape[1]
        if mode == "per_frame":
            s_obs, s_next = self._draw_shifts(b), self._draw_shifts(b)
        elif mode == "per_transition":
            s_obs = s_next = self._draw_shifts(b)
        else:
            s_obs = s_next = [s.expand(b, 2) for s in batch_shifts]
        obs = torch.stack([shift(f, o, pad) for f, o in zip(obs, s_obs, strict=True)])
        next_obs = torch.stack([shift(f, o, pad) for f, o in zip(next_obs, s_next, strict=True)])
        return obs, next_obs

    def _noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard-normal noise (K, *shape), member k's from its own generator."""
        return torch.stack([torch.randn(shape, generator=g, device=self.device) for g in self.rngs])

    def _sample(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's reparameterised sample for features (K, B, repr_dim)."""
        return self.actor.sample(features, self._noise((features.shape[1], self.action_dim)))

    # ----------------------------------------------------------------------------------------------- act
    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """One action per member: observations (K, *obs_shape) -> actions (K, A) in [-1, 1]. Pixels are
        uint8 CHW. No augmentation. The stochastic policy draws from every member's generator."""
        obs_t = torch.as_tensor(np.asarray(obs), device=self.device)
        if tuple(obs_t.shape) != (self.n_members, *self.obs_shape):
            raise ValueError(
                f"act: observations have shape {tuple(obs_t.shape)}, expected "
                f"({self.n_members}, {', '.join(map(str, self.obs_shape))})"
            )
        if self.is_pixel and obs_t.dtype != torch.uint8:
            raise ValueError(f"act: pixel observations must be uint8 in [0, 255], got {obs_t.dtype}")
        features = self.encoder(obs_t.unsqueeze(1) if self.is_pixel else obs_t.float().unsqueeze(1))
        if deterministic:
            action = self.actor.mode(features)
        else:
            action = self._sample(features)[0]
        return action.squeeze(1).cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------------------------------------ the losses
    def critic_loss(self, h, action, reward, terminal, h_next) -> torch.Tensor:
        """Twin-Q soft TD (SAC): the target from the target critic at a' ~ pi(s'), no gradient."""
        with torch.no_grad():
            next_action, next_log_prob = self._sample(h_next)
            target = L.soft_td_target(
                reward,
                terminal,
                *self.critic_target(h_next, next_action),
                next_log_prob,
                self.alpha,
                self.cfg.sac.gamma,
            )
        return L.critic_loss(*self.critic(h, action), target)

    def actor_and_alpha_losses(self, h) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC policy loss (the critic's parameters held constant) and temperature loss, one sample."""
        h_pi = h if self.cfg.sac.actor_updates_encoder else h.detach()
        pi_action, log_prob = self._sample(h_pi)
        q1, q2 = self.critic(h_pi, pi_action, detach_params=True)
        actor = L.actor_loss(log_prob, q1, q2, self.alpha)
        return actor, L.alpha_loss(self.log_alpha, log_prob, self.target_entropy)

    def inverse_loss(self, h_int, h_next_int, action) -> torch.Tensor:
        """Eq. 1 on the interaction transitions."""
        return L.inverse_loss(self.inverse_model(h_int, h_next_int), action)

    def domain_losses(self, h, n_int: int) -> dict[str, torch.Tensor]:
        """Discriminator BCE (interaction 0, observation 1) and, in ``adversarial`` mode, the generator loss.
        ``released`` mode feeds detached features: the discriminator never shapes the encoder."""
        rlv = self.cfg.rlv
        logits = self.discriminator(h if rlv.discriminator_mode == "adversarial" else h.detach())
        out = {"loss_discriminator": L.discriminator_loss(logits[:, :n_int], logits[:, n_int:])}
        if "loss_generator" in self.loss_groups:
            out["loss_generator"] = L.generator_loss(logits[:, :n_int], logits[:, n_int:], rlv.generator_loss)
        return out

    def paired_loss(self, paired: Mapping) -> torch.Tensor:
        """Eq. 2 on the paired robot / human frames, un-augmented."""
        robot = self._frames(paired, "robot", "paired")
        human = self._frames(paired, "human", "paired")
        return L.paired_loss(self.encoder(robot), self.encoder(human))

    def mem_loss(self, mem_batch: Mapping) -> torch.Tensor:
        """Eq. 6 on sub-sequences (K, B, k, C, H, W) of the observation videos, un-augmented."""
        frames = self._frames(mem_batch, "frames", "mem")
        label = self._tensor(mem_batch, "label", "mem", torch.int64)
        k, b, n = frames.shape[:3]
        features = self.encoder(frames.flatten(1, 2)).view(k, b, n, -1)
        return L.mem_loss(self.motion_extractor(features), label)

    def compute_losses(
        self,
        batch: Mapping,
        obs_batch: Mapping | None = None,
        paired: Mapping | None = None,
        mem_batch: Mapping | None = None,
    ) -> dict[str, torch.Tensor]:
        """All active losses of one update at the current parameters, per member (K,), with graphs."""
        rlv = self.cfg.rlv
        per_batch = self._augments() and self.cfg.encoder.shift == "per_batch"
        batch_shifts = self._draw_shifts(1) if per_batch else None
        obs, next_obs = self._augment(
            self._frames(batch, "obs", "interaction"),
            self._frames(batch, "next_obs", "interaction"),
            batch_shifts,
        )
        action = self._tensor(batch, "action", "interaction", torch.float32)
        reward = self._tensor(batch, "reward", "interaction", torch.float32)
        terminal = self._tensor(batch, "terminal", "interaction", torch.float32)
        n_int = obs.shape[1]
        out: dict[str, torch.Tensor] = {}

        if rlv.enabled:
            if obs_batch is None:
                raise ValueError("rlv.enabled: update() needs obs_batch (observation transitions)")
            obs_o, next_o = self._augment(
                self._frames(obs_batch, "obs", "observation"),
                self._frames(obs_batch, "next_obs", "observation"),
                batch_shifts,
            )
            h = torch.cat([self.encoder(obs), self.encoder(obs_o)], 1)
            h_next_int = self.encoder(next_obs)
            with torch.no_grad():
                h_next_obs = self.encoder(next_o)
                obs_action = self.inverse_model(h[:, n_int:], h_next_obs)
            out["loss_inverse"] = self.inverse_loss(h[:, :n_int], h_next_int, action)
            action = torch.cat([action, obs_action], 1)
            reward = torch.cat([reward, self._tensor(obs_batch, "reward", "observation", torch.float32)], 1)
            terminal = torch.cat(
                [terminal, self._tensor(obs_batch, "terminal", "observation", torch.float32)], 1
            )
            h_next = torch.cat([h_next_int.detach(), h_next_obs], 1)
            next_frames = (next_obs, next_o)
            if self.discriminator is not None:
                out.update(self.domain_losses(h, n_int))
            if "loss_paired" in self.loss_groups:
                if paired is None:
                    raise ValueError("rlv.paired: update() needs the paired batch (robot, human)")
                out["loss_paired"] = self.paired_loss(paired)
        else:
            h = self.encoder(obs)
            next_frames = (next_obs,)
            if self.encoder_target is None:
                with torch.no_grad():
                    h_next = self.encoder(next_obs)
        if self.encoder_target is not None:  # the critic target reads the target encoder (DrQ v1)
            with torch.no_grad():
                h_next = torch.cat([self.encoder_target(f) for f in next_frames], 1)

        out["loss_critic"] = self.critic_loss(h, action, reward, terminal, h_next)
        out["loss_actor"], out["loss_alpha"] = self.actor_and_alpha_losses(h)
        if self.mem_due():
            if mem_batch is None:
                raise ValueError(
                    "mem.enabled: this update adds the MEM loss and needs mem_batch (frames, label)"
                )
            out["loss_mem"] = self.mem_loss(mem_batch)
        return out

    # ------------------------------------------------------------------------------------------ stepping
    def _check(
        self, losses: dict[str, torch.Tensor], report: dict[str, torch.Tensor] | None = None
    ) -> tuple[dict[str, np.ndarray], list]:
        """The one device read of an update: every loss of every member (and the (K,) values of ``report``,
        which are returned but not checked). Members with a non-finite loss leave the pack
        (``self.active``); returns the values (NaN for members out of the pack) and the new divergences."""
        names = list(losses)
        report = report or {}
        read = torch.stack([*(losses[n].detach() for n in names), *report.values()])
        values = read.cpu().numpy().astype(np.float64)
        extra = dict(zip(report, values[len(names) :], strict=True))
        values = values[: len(names)]
        diverged = []
        for k in np.flatnonzero(self.active):
            bad = [i for i in range(len(names)) if not np.isfinite(values[i, k])]
            if bad:
                diverged.append((int(k), names[bad[0]], float(values[bad[0], k])))
                self.active[k] = False
        values[:, ~self.active] = np.nan
        for v in extra.values():
            v[~self.active] = np.nan
        return {**dict(zip(names, values, strict=True)), **extra}, diverged

    def _step(self, losses: dict[str, torch.Tensor]) -> dict[str, dict[torch.Tensor, torch.Tensor]]:
        """Gradients of every scaled loss w.r.t. its own groups at the current parameters, then every
        optimizer steps. Members out of the pack contribute zero gradients. Returns the gradients, loss ->
        {parameter: gradient}."""
        mask = torch.as_tensor(self.active, device=self.device)
        grads: dict[str, dict[torch.Tensor, torch.Tensor]] = {}
        for name, loss in losses.items():
            params = [p for g in self.loss_groups[name] for p in self.group_params(g)]
            total = self.loss_scales[name] * torch.where(mask, loss, 0.0).sum()
            g = torch.autograd.grad(total, params, retain_graph=True, allow_unused=True)
            grads[name] = self._drop_inactive(
                {p: gp for p, gp in zip(params, g, strict=True) if gp is not None}
            )
        if self.cfg.rlv.per_loss_optimizers:
            for name, pairs in grads.items():
                self._adam_step(self.optimizers[name], pairs)
        else:
            summed: dict[torch.Tensor, torch.Tensor] = {}
            for pairs in grads.values():
                for p, gp in pairs.items():
                    summed[p] = summed[p] + gp if p in summed else gp
            for name, opt in self.optimizers.items():
                if name.startswith("group_"):
                    self._adam_step(opt, summed)
        return grads

    def encoder_grad_norms(self, grads: Mapping[str, Mapping[torch.Tensor, torch.Tensor]]) -> dict:
        """Loss -> (K,) L2 norm of its scaled gradient over member k's encoder parameters, for every loss
        that trains the encoder (NaN for a member without one: out of the pack). One device read."""
        encoder = self.group_params("encoder")
        names = [n for n in LOSS_GROUPS if n in grads and "encoder" in self.loss_groups[n]]
        if not encoder or not names:
            return {}
        nan = torch.tensor(float("nan"), device=self.device)
        rows = []
        for name in names:
            per_member: list[list[torch.Tensor]] = [[] for _ in range(self.n_members)]
            for p in encoder:
                if p in grads[name]:
                    per_member[self._member_of[p]].append(grads[name][p].flatten())
            rows.append(
                torch.stack([torch.linalg.vector_norm(torch.cat(g)) if g else nan for g in per_member])
            )
        values = torch.stack(rows).cpu().numpy().astype(np.float64)
        return dict(zip(names, values, strict=True))

    def _drop_inactive(self, grads: dict[torch.Tensor, torch.Tensor]) -> dict[torch.Tensor, torch.Tensor]:
        """The gradients of the members still in the pack: a member out of the pack takes no optimizer step
        at all (masking its loss is not enough: its gradient is then 0 times its partial derivatives, NaN
        where those are not finite)."""
        if self.active.all():
            return grads
        return {p: g for p, g in grads.items() if self.active[self._member_of[p]]}

    @staticmethod
    def _adam_step(opt: torch.optim.Optimizer, grads: Mapping[torch.Tensor, torch.Tensor]) -> None:
        """One step of ``opt`` with the given gradients of (some of) its parameters.

        Each gradient is handed over in its parameter's memory layout. Autograd may return a gradient with
        other strides (a pack weight's gradient through the batched product's transpose is a transposed
        view), and the fused Adam kernel on the CPU reads a gradient in memory order whatever its strides:
        it would apply the transposed gradient to the wrong elements (``test_agent_step`` checks every
        parameter's first step against its own gradient)."""
        params = [p for group in opt.param_groups for p in group["params"]]
        for p in params:
            g = grads.get(p)
            if g is not None and g.stride() != p.stride():
                g = torch.empty_like(p).copy_(g)
            p.grad = g
        opt.step()
        for p in params:
            p.grad = None

    @torch.no_grad()
    def _update_target(self) -> None:
        tau = self.cfg.sac.tau
        for target, online in zip(self.critic_target.parameters(), self.critic.parameters(), strict=True):
            target.lerp_(online, tau)
        if self.encoder_target is not None:
            enc_tau = self.cfg.encoder.target_tau if self.cfg.encoder.target_tau is not None else tau
            for target, online in zip(
                self.encoder_target.parameters(), self.encoder.parameters(), strict=True
            ):
                target.lerp_(online, enc_tau)

    def update(
        self,
        batch: Mapping,
        obs_batch: Mapping | None = None,
        paired: Mapping | None = None,
        mem_batch: Mapping | None = None,
    ) -> UpdateResult:
        """One gradient update of every member. Batches (tensors or arrays), each with the pack axis first:

        - ``batch`` (interaction): obs (K, B, C, H, W) uint8 or (K, B, D) float32, action (K, B, A),
          reward (K, B), next_obs, terminal (K, B) (1 only for true terminals).
        - ``obs_batch`` (RLV): obs, next_obs, reward, terminal; no action (the inverse model supplies it).
        - ``paired`` (RLV with paired data): robot, human (K, N, C, H, W) uint8.
        - ``mem_batch`` (MEM due, see ``mem_due``): frames (K, B, k, C, H, W) uint8, label (K, B) int64.
        """
        losses = self.compute_losses(batch, obs_batch, paired, mem_batch)
        values, diverged = self._check(losses, {"alpha": self.alpha.squeeze(1)})
        norms = None
        if self.active.any():
            grads = self._step(losses)
            if self.update_step == 0:
                norms = self.encoder_grad_norms(grads)
        self.update_step += 1
        if self.update_step % self.cfg.sac.target_update_period == 0:
            self._update_target()
        return UpdateResult(values, diverged, norms)

    def pretrain_mem_step(self, mem_batch: Mapping) -> UpdateResult:
        """One encoder + MEM pre-training step on Eq. 6 (unscaled, optimizer ``mem_pretrain``)."""
        if self.motion_extractor is None:
            raise ValueError("pretrain_mem_step needs mem.enabled = true")
        losses = {"loss_mem": self.mem_loss(mem_batch)}
        values, diverged = self._check(losses)
        if self.active.any():
            mask = torch.as_tensor(self.active, device=self.device)
            opt = self.optimizers["mem_pretrain"]
            params = [p for group in opt.param_groups for p in group["params"]]
            grads = torch.autograd.grad(torch.where(mask, losses["loss_mem"], 0.0).sum(), params)
            self._adam_step(opt, self._drop_inactive(dict(zip(params, grads, strict=True))))
        self.mem_pretrain_step += 1
        return UpdateResult(values, diverged)

    # --------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Networks (target critic included), every optimizer, log_alpha, counters, the members' seeds,
        activity and RNG states: only tensors, dicts, lists, numbers and strings (loadable with
        ``torch.load(weights_only=True)``)."""
        return {
            "seeds": list(self.seeds),
            "active": [bool(a) for a in self.active],
            "update_step": self.update_step,
            "mem_pretrain_step": self.mem_pretrain_step,
            "rngs": [g.get_state() for g in self.rngs],
            "log_alpha": self.log_alpha.detach().clone(),
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a ``state_dict`` of an agent built with the same config, shapes and seeds."""
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise KeyError(f"agent state has no {missing}")
        if list(state["seeds"]) != list(self.seeds):
            raise ValueError(
                f"agent state is of the pack {list(state['seeds'])}, this agent is {list(self.seeds)}"
            )
        nets, opts = self.networks, self.optimizers
        if set(state["networks"]) != set(nets) or set(state["optimizers"]) != set(opts):
            raise ValueError(
                f"agent state holds networks {sorted(state['networks'])} and optimizers "
                f"{sorted(state['optimizers'])}, this agent has {sorted(nets)} and {sorted(opts)}: "
                "was it saved with another config?"
            )
        for name, net in nets.items():
            net.load_state_dict(state["networks"][name])
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
        with torch.no_grad():
            for log_alpha, value in zip(self.log_alphas, state["log_alpha"], strict=True):
                log_alpha.copy_(value.squeeze())
        for g, s in zip(self.rngs, state["rngs"], strict=True):
            g.set_state(s.cpu())  # generator states are CPU byte tensors on every device
        self.active = np.asarray(state.get("active", [True] * self.n_members), dtype=bool)
        self.update_step = int(state["update_step"])
        self.mem_pretrain_step = int(state["mem_pretrain_step"])
