"""One agent for SAC, RLV and RLMU (METHODS section 3); the optional parts are switched on by ``AgentConfig``.

Update (``Agent.update``), every number from the config:

1. Encode. Pixel batches are random-shifted per sample (``augment.random_shift``; s and s' independently,
   as DrQ; paired and MEM frames are not shifted). Each frame is encoded once: s_int, s_obs, s'_int with
   gradients (s'_int feeds the inverse loss), s'_obs without (it only feeds the critic target and the
   inverse model's detached action labels). Plain SAC: s with gradients, s' without.
2. Losses, all at the same parameters (``losses.py``):
   - ``loss_critic``: twin-Q soft TD on all 256 + 256 transitions; the observation actions are the inverse
     model's predictions, detached; the target uses the target critic on the online encoder's features of
     s' (no gradient, as DrQ-v2), so s' is encoded once.
   - ``loss_actor``, ``loss_alpha``: SAC policy and temperature losses on all transitions. The actor reads
     detached features by default (``sac.actor_updates_encoder = False``, as DrQ / SAC-AE: the actor
     gradient through a shared pixel encoder is known to destabilise it), so the encoder is shaped by the
     critic, inverse, domain and MEM losses.
   - ``loss_inverse`` (Eq. 1), interaction transitions only.
   - ``loss_discriminator``: BCE on f_enc(s) of both batches (interaction 0, observation 1), gradient to the
     discriminator only. ``released`` mode feeds it detached features.
   - ``loss_generator`` (``adversarial`` mode): the encoder's adversarial objective (flipped labels or
     reversal, ``rlv.generator_loss``), gradient to the encoder only: a separate generator step.
   - ``loss_paired`` (Eq. 2) on the paired frames, un-augmented.
   - ``loss_mem`` (Eq. 6) every ``mem.period`` updates on a MEM batch, un-augmented.
3. Every loss value is checked before any parameter moves; a non-finite one raises ``DivergenceError``.
4. Gradients, each loss with respect to its own parameter groups only (``LOSS_GROUPS``), all computed at
   the same parameters, then every optimizer steps (the simultaneous update of the [released] graph):

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

   ``rlv.per_loss_optimizers = True`` ([released]): one Adam per active loss over that loss's groups (SAC:
   3; RLV with paired data: critic, actor, alpha, inverse, discriminator, generator, paired = 7; RLMU: +mem,
   -paired). The encoder then has one Adam state per loss that touches it, so a loss scale acts only through
   Adam's epsilon. ``False``: the scaled gradients are summed per parameter and one Adam per group steps.
   Learning rates: ``sac.lr``, except the MEM optimizer / the motion_extractor group (``mem.lr``).
   Adam being elementwise, both are implemented with as few ``step`` calls as they allow: one ``joint`` Adam
   for every parameter that one loss trains (summed mode: every parameter), plus, in per-loss mode, one
   Adam per loss for the groups several losses train (``_build_optimizers``). Losses whose graphs stay
   inside the pass's groups share one backward pass (``_plan_backward``; SAC: one pass in all).
5. Polyak update of the target critic every ``sac.target_update_period`` updates.

Plain SAC on state observations (no encoder parameters, no RLV or MEM part) computes steps 2 and 4 by hand
(``fused_sac.py``, ``Agent.fused_sac``): the same losses and gradients, bit for bit on the CPU, without an
autograd graph.

``pretrain_mem_step`` trains encoder + MEM on Eq. 6 alone with its own Adam (``mem.lr``).

Randomness: parameter initialisation uses torch's global RNG (seed it before constructing the agent). Every
draw afterwards (augmentation shifts, policy noise in ``act`` and ``update``) comes from the agent's own
``torch.Generator`` (``Agent.rng``), seeded from the global RNG at construction and saved in ``state_dict``,
so a checkpoint resumes the exact random stream.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from rlmu.agent import losses as L
from rlmu.agent.augment import random_shift
from rlmu.agent.config import AgentConfig
from rlmu.agent.fused_sac import fused_sac_update
from rlmu.agent.networks import Actor, Critic, Discriminator, Encoder, InverseModel, MotionExtractor
from rlmu.errors import DivergenceError

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

_STATE_KEYS = ("update_step", "mem_pretrain_step", "rng", "log_alpha", "networks", "optimizers")


class Agent:
    """SAC + optional RLV / RLMU parts. See the module docstring for the update.

    Args:
        cfg: the agent configuration (an ``AgentConfig`` or a mapping validated into one).
        obs_shape: (C, H, W) for uint8 pixel observations or (D,) for float state observations.
        action_dim: |A|; actions live in [-1, 1]^A.
        device: torch device for networks and batches.
    """

    def __init__(
        self,
        cfg: AgentConfig | Mapping,
        obs_shape: tuple[int, ...],
        action_dim: int,
        device: str | torch.device = "cpu",
    ):
        self.cfg = cfg if isinstance(cfg, AgentConfig) else AgentConfig.model_validate(cfg)
        if int(action_dim) < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.action_dim = int(action_dim)
        self.device = torch.device(device)
        sac, enc, rlv, mem = self.cfg.sac, self.cfg.encoder, self.cfg.rlv, self.cfg.mem

        self.encoder = Encoder(self.obs_shape, enc.channels, enc.kernel, enc.pool, enc.channels_last)
        self.is_pixel = self.encoder.is_pixel
        repr_dim = self.encoder.repr_dim
        self.actor = Actor(repr_dim, self.action_dim, sac.hidden, sac.log_std_min, sac.log_std_max)
        self.critic = Critic(repr_dim, self.action_dim, sac.hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.inverse_model = (
            InverseModel(repr_dim, self.action_dim, rlv.inverse_hidden, rlv.inverse_output_tanh)
            if rlv.enabled
            else None
        )
        self.discriminator = (
            Discriminator(repr_dim, rlv.discriminator_hidden)
            if rlv.enabled and rlv.discriminator_mode != "off"
            else None
        )
        self.motion_extractor = (
            MotionExtractor(repr_dim, mem.n_classes, mem.lstm_hidden, mem.lstm_layers)
            if mem.enabled
            else None
        )
        for net in self.networks.values():
            net.to(self.device)
        self.log_alpha = torch.tensor(sac.init_log_alpha, device=self.device, requires_grad=True)
        # Parameter lists per group, built once: the modules never change after construction, and
        # walking ``Module.parameters()`` on every update is a visible cost next to a small-MLP update.
        self._params: dict[str, list[torch.Tensor]] = {"log_alpha": [self.log_alpha]}
        for name, net in self.networks.items():
            self._params[name] = list(net.parameters())
        self.target_entropy = (
            float(sac.target_entropy) if sac.target_entropy is not None else -float(action_dim)
        )

        self.rng = torch.Generator(device=self.device)
        self.rng.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        self.update_step = 0
        self.mem_pretrain_step = 0

        self.loss_groups = self._active_loss_groups()
        self.loss_scales = {
            "loss_critic": 1.0,
            "loss_actor": 1.0,
            "loss_alpha": 1.0,
            "loss_inverse": rlv.inverse_scale,
            "loss_discriminator": rlv.discriminator_scale,
            "loss_generator": rlv.generator_scale,
            "loss_paired": rlv.paired_scale,
            "loss_mem": mem.loss_scale,
        }
        self.optimizers = self._build_optimizers()
        # Each optimizer's parameter -> its param-group index (``_adam_step``); the ``joint`` Adam's parameters.
        self._adam_groups = {
            name: {p: i for i, group in enumerate(opt.param_groups) for p in group["params"]}
            for name, opt in self.optimizers.items()
        }
        self._joint_params = set(self._adam_groups.get("joint", {}))
        self.backward_plan = self._plan_backward()
        # Plain SAC on state observations (the encoder has no parameters): the update is differentiated by
        # hand (``fused_sac.py``), the same losses and gradients as autograd's without recording a graph.
        # Set it to False to run the general path.
        sac_losses = ("loss_critic", "loss_actor", "loss_alpha")
        self.fused_sac = (
            not self._params["encoder"]
            and tuple(self.loss_groups) == sac_losses
            and self.backward_plan == [sac_losses]
            and self._joint_params == {*self._params["actor"], *self._params["critic"], self.log_alpha}
        )

    # ----------------------------------------------------------------------------------------- structure
    @property
    def networks(self) -> dict[str, nn.Module]:
        nets = {
            "encoder": self.encoder,
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }
        for name in ("inverse_model", "discriminator", "motion_extractor"):
            if getattr(self, name) is not None:
                nets[name] = getattr(self, name)
        return nets

    def _group_params(self, group: str) -> list[torch.Tensor]:
        return self._params.get(group, [])

    def _active_loss_groups(self) -> dict[str, tuple[str, ...]]:
        """Active losses -> parameter groups with parameters. A loss whose only group is a parameter-free
        encoder (state observations: generator, paired) is inactive."""
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
            groups = tuple(g for g in groups if self._group_params(g))
            if groups:
                result[name] = groups
        return result

    def _loss_reach(self, name: str) -> set[str]:
        """The parameter groups loss ``name``'s graph reaches, its own groups included. The actor loss reads the
        critic with ``grad_params=False`` and alpha detached; the generator loss runs through the
        discriminator; the discriminator loss reaches the encoder only in ``adversarial`` mode."""
        sac, rlv = self.cfg.sac, self.cfg.rlv
        extra = {
            "loss_generator": {"discriminator"},
            "loss_discriminator": {"encoder"} if rlv.discriminator_mode == "adversarial" else set(),
            "loss_actor": {"encoder"} if sac.actor_updates_encoder else set(),
        }.get(name, set())
        return {g for g in (*LOSS_GROUPS[name], *extra) if self._group_params(g)}

    def _shared_groups(self) -> set[str]:
        """Per-loss mode: the groups trained by two or more active losses (one Adam state per loss there)."""
        if not self.cfg.rlv.per_loss_optimizers:
            return set()
        count = Counter(g for groups in self.loss_groups.values() for g in groups)
        return {g for g, c in count.items() if c > 1}

    def _plan_backward(self) -> list[tuple[str, ...]]:
        """The losses back-propagated together, one backward pass per tuple.

        Losses share a pass when none of them reaches a parameter of the pass that is outside its own groups
        (so each parameter's gradient is exactly the sum over the losses that train it), and, in per-loss
        mode, when their groups belong to no other active loss (so each gradient is one loss's). The rest
        get a pass each, with respect to their own groups."""
        names = list(self.loss_groups)
        shared = self._shared_groups()
        joint = [n for n in names if not shared.intersection(self.loss_groups[n])]
        while joint:
            union = {g for n in joint for g in self.loss_groups[n]}
            stray = [n for n in joint if (self._loss_reach(n) & union) - set(self.loss_groups[n])]
            if not stray:
                break
            joint.remove(stray[0])
        return ([tuple(joint)] if joint else []) + [(n,) for n in names if n not in joint]

    def _adam(self, params: Iterable[torch.Tensor] | list[dict], lr: float) -> torch.optim.Adam:
        # The fused kernel (one pass per step over all tensors; CPU and CUDA) is the same Adam update,
        # about 3.5x cheaper than torch's default per-tensor loop on the CPU for these networks.
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.Adam(list(params), lr=lr, eps=self.cfg.sac.adam_eps, fused=fused)

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam is elementwise, so optimizers are laid out by parameter, which is the same update as one Adam
        per loss (per-loss mode) or per group (summed mode) and costs one ``step`` call instead of several:

        - ``joint``: every parameter trained by one loss only (summed mode: every parameter), in parameter
          groups by learning rate;
        - per-loss mode, ``loss_*``: that loss's Adam state for the groups two or more losses train (RLV's
          shared encoder);
        - ``mem_pretrain``: encoder + MEM pre-training.
        """
        sac, mem = self.cfg.sac, self.cfg.mem
        per_loss = self.cfg.rlv.per_loss_optimizers
        shared = self._shared_groups()

        def lr(loss: str, group: str) -> float:
            return mem.lr if (loss == "loss_mem" if per_loss else group == "motion_extractor") else sac.lr

        by_lr: dict[float, list[torch.Tensor]] = {}
        seen: set[str] = set()
        for name, groups in self.loss_groups.items():
            for group in groups:
                if group not in shared and group not in seen:
                    seen.add(group)
                    by_lr.setdefault(lr(name, group), []).extend(self._group_params(group))
        opts: dict[str, torch.optim.Optimizer] = {}
        if by_lr:
            opts["joint"] = self._adam([{"params": ps, "lr": v} for v, ps in by_lr.items()], sac.lr)
        for name, groups in self.loss_groups.items():
            own_shared = [p for g in groups if g in shared for p in self._group_params(g)]
            if own_shared:
                opts[name] = self._adam(own_shared, lr(name, groups[0]))
        if mem.enabled:
            opts["mem_pretrain"] = self._adam(
                [*self._group_params("encoder"), *self._group_params("motion_extractor")], mem.lr
            )
        return opts

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.detach().exp()

    def mem_due(self) -> bool:
        """Whether the next ``update`` adds the MEM loss (and so needs ``mem_batch``)."""
        return self.cfg.mem.enabled and self.update_step % self.cfg.mem.period == 0

    # ----------------------------------------------------------------------------------------------- act
    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Action(s) in [-1, 1] for one observation (``obs_shape``) -> (A,), or a batch (N, *obs_shape) ->
        (N, A). Pixels are uint8 CHW. No augmentation."""
        obs_t = torch.as_tensor(np.asarray(obs), device=self.device)
        single = obs_t.dim() == len(self.obs_shape)
        if single:
            obs_t = obs_t.unsqueeze(0)
        if tuple(obs_t.shape[1:]) != self.obs_shape:
            raise ValueError(
                f"act: observation shape {tuple(obs_t.shape)} does not match obs_shape {self.obs_shape}"
            )
        if self.is_pixel and obs_t.dtype != torch.uint8:
            raise ValueError(f"act: pixel observations must be uint8 in [0, 255], got {obs_t.dtype}")
        features = self.encoder(obs_t)
        if deterministic:
            action = self.actor.mode(features)
        else:
            action = self.actor.sample(features, self.rng, log_prob=False)[0]
        action = action.cpu().numpy().astype(np.float32)
        return action[0] if single else action

    # -------------------------------------------------------------------------------------------- update
    def _tensor(self, batch: Mapping, key: str, where: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        if key not in batch:
            raise KeyError(f"{where} batch has no key {key!r} (keys: {sorted(batch)})")
        value = torch.as_tensor(batch[key]).to(self.device, non_blocking=True)
        return value.to(dtype) if dtype is not None and value.dtype != dtype else value

    def _frames(self, batch: Mapping, key: str, where: str) -> torch.Tensor:
        """Observations of ``batch[key]``: uint8 (..., C, H, W) for pixels, (..., D) for state."""
        value = self._tensor(batch, key, where)
        n = len(self.obs_shape)
        if tuple(value.shape[-n:]) != self.obs_shape:
            raise ValueError(
                f"{where} batch {key!r} has shape {tuple(value.shape)}, expected (..., {self.obs_shape})"
            )
        if self.is_pixel and value.dtype != torch.uint8:
            raise ValueError(f"{where} batch {key!r} must hold uint8 frames in [0, 255], got {value.dtype}")
        return value if self.is_pixel else value.float()

    def _augment(self, frames: torch.Tensor) -> torch.Tensor:
        if self.is_pixel and self.cfg.encoder.augment:
            return random_shift(frames, self.cfg.encoder.augment_pad, self.rng)
        return frames

    def _encode_mem(self, mem_batch: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
        frames = self._frames(mem_batch, "frames", "mem")
        label = self._tensor(mem_batch, "label", "mem", torch.int64)
        b, k = frames.shape[:2]
        features = self.encoder(frames.flatten(0, 1)).view(b, k, -1)
        return self.motion_extractor(features), label

    def compute_losses(
        self,
        batch: Mapping,
        obs_batch: Mapping | None = None,
        paired: Mapping | None = None,
        mem_batch: Mapping | None = None,
    ) -> dict[str, torch.Tensor]:
        """All active losses of one update at the current parameters (unscaled scalars, with graphs)."""
        rlv = self.cfg.rlv
        obs = self._augment(self._frames(batch, "obs", "interaction"))
        next_obs = self._augment(self._frames(batch, "next_obs", "interaction"))
        action = self._tensor(batch, "action", "interaction", torch.float32)
        reward = self._tensor(batch, "reward", "interaction", torch.float32)
        terminal = self._tensor(batch, "terminal", "interaction", torch.float32)
        n_int = obs.shape[0]
        out: dict[str, torch.Tensor] = {}

        if rlv.enabled:
            if obs_batch is None:
                raise ValueError("rlv.enabled: update() needs obs_batch (observation transitions)")
            obs_o = self._augment(self._frames(obs_batch, "obs", "observation"))
            next_o = self._augment(self._frames(obs_batch, "next_obs", "observation"))
            # Three encoder calls rather than one over the concatenation: with per-loss gradients each
            # backward then runs over its own rows only (critic: s_int, s_obs; inverse: s_int, s'_int).
            h = torch.cat([self.encoder(obs), self.encoder(obs_o)])
            h_next_int = self.encoder(next_obs)
            with torch.no_grad():
                h_next_obs = self.encoder(next_o)
                obs_action = self.inverse_model(h[n_int:], h_next_obs)
            out["loss_inverse"] = L.inverse_loss(self.inverse_model(h[:n_int], h_next_int), action)
            action = torch.cat([action, obs_action])
            reward = torch.cat([reward, self._tensor(obs_batch, "reward", "observation", torch.float32)])
            terminal = torch.cat(
                [terminal, self._tensor(obs_batch, "terminal", "observation", torch.float32)]
            )
            h_next = torch.cat([h_next_int.detach(), h_next_obs])
            if self.discriminator is not None:
                logits = self.discriminator(h if rlv.discriminator_mode == "adversarial" else h.detach())
                # Only the discriminator's parameters receive this loss's gradient (LOSS_GROUPS).
                out["loss_discriminator"] = L.discriminator_loss(logits[:n_int], logits[n_int:])
                if "loss_generator" in self.loss_groups:
                    out["loss_generator"] = L.generator_loss(
                        logits[:n_int], logits[n_int:], rlv.generator_loss
                    )
            if "loss_paired" in self.loss_groups:
                if paired is None:
                    raise ValueError("rlv.paired: update() needs the paired batch (robot, human)")
                robot = self._frames(paired, "robot", "paired")
                human = self._frames(paired, "human", "paired")
                h_pair = self.encoder(torch.cat([robot, human]))
                out["loss_paired"] = L.paired_loss(h_pair[: robot.shape[0]], h_pair[robot.shape[0] :])
        else:
            h = self.encoder(obs)
            with torch.no_grad():
                h_next = self.encoder(next_obs)

        alpha = self.alpha
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(h_next, self.rng)
            target = L.soft_td_target(
                reward,
                terminal,
                *self.critic_target(h_next, next_action),
                next_log_prob,
                alpha,
                self.cfg.sac.gamma,
            )
        out["loss_critic"] = L.critic_loss(*self.critic(h, action), target)

        h_pi = h if self.cfg.sac.actor_updates_encoder else h.detach()
        pi_action, log_prob = self.actor.sample(h_pi, self.rng)
        # The critic's parameters are constants here (the actor loss trains the actor only).
        out["loss_actor"] = L.actor_loss(log_prob, *self.critic(h_pi, pi_action, grad_params=False), alpha)
        out["loss_alpha"] = L.alpha_loss(self.log_alpha, log_prob, self.target_entropy)

        if self.mem_due():
            if mem_batch is None:
                raise ValueError(
                    "mem.enabled: this update adds the MEM loss and needs mem_batch (frames, label)"
                )
            out["loss_mem"] = L.mem_loss(*self._encode_mem(mem_batch))
        return out

    def _fused_sac_losses(
        self, batch: Mapping
    ) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        """``compute_losses`` and the gradients of their sum, by ``fused_sac_update`` (``self.fused_sac``)."""
        obs = self._frames(batch, "obs", "interaction")
        next_obs = self._frames(batch, "next_obs", "interaction")
        return fused_sac_update(
            self.actor,
            self.critic,
            self.critic_target,
            self.log_alpha,
            self.rng,
            obs,
            self._tensor(batch, "action", "interaction", torch.float32),
            self._tensor(batch, "reward", "interaction", torch.float32),
            self._tensor(batch, "terminal", "interaction", torch.float32),
            next_obs,
            self.cfg.sac.gamma,
            self.target_entropy,
        )

    def _check_finite(self, losses: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        names = list(losses)
        values = torch.stack([losses[n].detach() for n in names]).tolist()
        for name, value in zip(names, values, strict=True):
            if not math.isfinite(value):
                raise DivergenceError(name, value, step)
        return dict(zip(names, values, strict=True))

    def _apply(self, losses: dict[str, torch.Tensor]) -> None:
        """Gradients of every scaled loss w.r.t. its groups at the current parameters (one backward pass per
        ``_plan_backward`` entry), then every optimizer steps."""
        scaled = {
            name: loss if self.loss_scales[name] == 1.0 else self.loss_scales[name] * loss
            for name, loss in losses.items()
        }
        jobs = [names for names in ([n for n in job if n in scaled] for job in self.backward_plan) if names]
        joint: dict[torch.Tensor, torch.Tensor] = {}
        shared: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for i, names in enumerate(jobs):
            params = [
                p
                for g in dict.fromkeys(g for n in names for g in self.loss_groups[n])
                for p in self._params[g]
            ]
            loss = scaled[names[0]]
            for n in names[1:]:
                loss = loss + scaled[n]
            grads = torch.autograd.grad(loss, params, retain_graph=i < len(jobs) - 1, allow_unused=True)
            for p, g in zip(params, grads, strict=True):
                if g is None:
                    continue
                if p in self._joint_params:  # summed mode: sum over passes; per-loss mode: one pass
                    joint[p] = joint[p] + g if p in joint else g
                else:  # per-loss mode, a shared group: this loss's own Adam (its pass has this loss only)
                    shared.setdefault(names[0], []).append((p, g))
        if "joint" in self.optimizers:
            self._adam_step("joint", list(joint.items()))
        for name, pairs in shared.items():
            self._adam_step(name, pairs)

    def _adam_step(self, name: str, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """One step of Adam ``name`` with the gradients ``pairs`` [(parameter, gradient)].

        Once every parameter has its Adam state, the fused update is called directly on the optimizer's own
        state tensors: the same two kernels ``torch.optim.Adam(fused=True).step()`` runs (count the step, then
        update), without its per-call bookkeeping, a visible cost next to a small-MLP update. The optimizer
        object keeps the state for checkpoints. Otherwise (first step, non-fused devices) ``.grad`` is set just
        for a regular ``step()`` (autograd.grad never accumulates into it)."""
        opt = self.optimizers[name]
        state = opt.state
        if not opt.defaults["fused"] or any(p not in state for p, _ in pairs):
            for p, g in pairs:
                p.grad = g
            opt.step()
            for p, _ in pairs:
                p.grad = None
            return
        by_group: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for p, g in pairs:
            by_group.setdefault(self._adam_groups[name][p], []).append((p, g))
        for i, items in by_group.items():
            group = opt.param_groups[i]
            params = [p for p, _ in items]
            steps = [state[p]["step"] for p in params]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(
                params,
                [g for _, g in items],
                [state[p]["exp_avg"] for p in params],
                [state[p]["exp_avg_sq"] for p in params],
                [],
                steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                amsgrad=False,
                maximize=group["maximize"],
            )

    @torch.no_grad()
    def _update_target(self) -> None:
        tau = self.cfg.sac.tau
        torch._foreach_lerp_(self._params["critic_target"], self._params["critic"], tau)

    def update(
        self,
        batch: Mapping,
        obs_batch: Mapping | None = None,
        paired: Mapping | None = None,
        mem_batch: Mapping | None = None,
    ) -> dict[str, float]:
        """One gradient update. Batches (tensors or arrays):

        - ``batch`` (interaction): obs (B, C, H, W) uint8 or (B, D) float32, action (B, A), reward (B,),
          next_obs, terminal (B,) (1 only for true terminals).
        - ``obs_batch`` (RLV): obs, next_obs, reward, terminal; no action (the inverse model supplies it).
        - ``paired`` (RLV with paired data): robot, human (N, C, H, W) uint8.
        - ``mem_batch`` (MEM due, see ``mem_due``): frames (B, k, C, H, W) uint8, label (B,) int64.

        Returns the active losses keyed by progress-CSV column (``loss_critic``, ...) and ``alpha``.
        Raises ``DivergenceError`` before any parameter changes if a loss is not finite.
        """
        if self.fused_sac:  # losses and gradients together (fused_sac.py)
            losses, pairs = self._fused_sac_losses(batch)
        else:
            losses, pairs = self.compute_losses(batch, obs_batch, paired, mem_batch), None
        values = self._check_finite(losses, self.update_step)
        values["alpha"] = float(self.alpha)
        if pairs is None:
            self._apply(losses)
        else:
            self._adam_step("joint", pairs)
        self.update_step += 1
        if self.update_step % self.cfg.sac.target_update_period == 0:
            self._update_target()
        return values

    def pretrain_mem_step(self, mem_batch: Mapping) -> dict[str, float]:
        """One encoder + MEM pre-training step on Eq. 6 (unscaled, optimizer ``mem_pretrain``).
        A non-finite loss raises ``DivergenceError`` with the pre-training step index."""
        if self.motion_extractor is None:
            raise ValueError("pretrain_mem_step needs mem.enabled = true")
        loss = L.mem_loss(*self._encode_mem(mem_batch))
        value = self._check_finite({"loss_mem": loss}, self.mem_pretrain_step)
        opt = self.optimizers["mem_pretrain"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        self.mem_pretrain_step += 1
        return value

    # --------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        """Networks (target critic included), every optimizer, log_alpha, counters and the RNG state: only
        tensors, dicts, lists, numbers and strings (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "update_step": self.update_step,
            "mem_pretrain_step": self.mem_pretrain_step,
            "rng": self.rng.get_state(),
            "log_alpha": self.log_alpha.detach().clone(),
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a ``state_dict`` of an agent built with the same config and shapes."""
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise KeyError(f"agent state has no {missing}")
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
            self.log_alpha.copy_(state["log_alpha"])
        self.rng.set_state(state["rng"].cpu())  # generator states are CPU byte tensors on every device
        self.update_step = int(state["update_step"])
        self.mem_pretrain_step = int(state["mem_pretrain_step"])
