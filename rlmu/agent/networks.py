"""Networks, named as in the papers: ``Encoder`` (f_enc), ``Actor``, ``Critic``, ``InverseModel`` (f_inv),
``Discriminator`` and ``MotionExtractor`` (f_mem), each for a *pack* of K seeds trained together.

A pack network holds the K members' networks side by side: every activation has a leading pack axis
(``(K, B, ...)`` in, ``(K, B, ...)`` out), and member k's slice is computed from member k's parameters and
inputs only. Each member's parameters are those of its own ordinary ``nn.Linear`` / ``nn.Conv2d`` /
``nn.LSTM``, initialised from that member's seed (``Agent`` builds them under ``torch.manual_seed(seed)``),
so a member's network is the same whether it trains alone or in a pack.

Pack invariance on the CPU (a member's numbers do not depend on its neighbours): linear layers are one
``torch.baddbmm`` for the whole pack, whose slices run the same GEMM as a pack of one; a layer with a single
output unit is a row-wise product and sum instead, because ``bmm`` with one output column takes a path whose
result for one slice depends on the number of slices. Convolutions run member by member on the CPU (a grouped
convolution's result per group depends on the number of groups) and as one grouped convolution elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """One member's Linear-ReLU stack: in_dim -> hidden... -> out_dim (no output activation)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class PackLinear(nn.Module):
    """K independent linear layers run as one batched product: x (K, B, in) -> x W_k^T + b_k, (K, B, out).

    The parameters are the members' own ``nn.Linear`` layers (``members``), each an ordinary leaf tensor;
    the forward stacks them. So an optimizer, a Polyak update or a checkpoint treats every member's
    parameters as separate tensors of the size a pack of one has: elementwise CPU kernels, whose vectorised
    body and scalar tail can round differently, then see the same tensor for a member in any pack."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.members = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        weight = torch.stack([layer.weight for layer in self.members])  # (K, out, in)
        bias = torch.stack([layer.bias for layer in self.members])  # (K, out)
        if detach_params:  # parameters as constants: the gradient reaches x only
            weight, bias = weight.detach(), bias.detach()
        if weight.shape[1] == 1:  # one output unit: a row-wise dot product (see the module docstring)
            return (x * weight).sum(-1, keepdim=True) + bias.unsqueeze(1)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


class PackMLP(nn.Module):
    """K Linear-ReLU stacks of the same shape, one per member: (K, B, in) -> (K, B, out)."""

    def __init__(self, members: Sequence[nn.Sequential]):
        super().__init__()
        linears = [[m for m in member if isinstance(m, nn.Linear)] for member in members]
        self.layers = nn.ModuleList(PackLinear(list(layer)) for layer in zip(*linears, strict=True))

    def forward(self, x: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, detach_params)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


# ------------------------------------------------------------------------------------------------- f_enc
def state_encoder(state_dim: int, hidden: tuple[int, ...], features: int, layer_norm: bool) -> nn.Sequential:
    """One member's state encoder: a Linear-ReLU stack state_dim -> hidden... -> features, then (with
    ``layer_norm``) a LayerNorm; the pack encoder adds the tanh (DrQ / SAC-AE's projection: without the
    LayerNorm the critic's gradient drives the pre-activations into tanh's saturation)."""
    net = mlp(state_dim, hidden, features)
    if layer_norm:
        net.append(nn.LayerNorm(features))
    return net


class PackLayerNorm(nn.Module):
    """The members' own ``nn.LayerNorm`` layers, applied member by member: (K, B, F) -> (K, B, F)."""

    def __init__(self, layers: Sequence[nn.LayerNorm]):
        super().__init__()
        self.members = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([norm(xk) for norm, xk in zip(self.members, x, strict=True)])


class ConvEncoder(nn.Module):
    """One member's pixel encoder [released RLV]: ``len(channels)`` blocks of [conv k x k 'same', ReLU,
    max-pool]; 16, 16, 32 channels at 48 px give 6 x 6 x 32 = 1152 features. Input scaling x / 255 - 0.5
    (DrQ). [conv, ReLU, max-pool] is computed as [conv, max-pool, ReLU]: ReLU is monotonic, so both orders
    give the same function, and the ReLU then runs on pool^2 times fewer elements."""

    def __init__(self, obs_shape: tuple[int, int, int], channels: tuple[int, ...], kernel: int, pool: int):
        super().__init__()
        in_ch, h, w = obs_shape
        self.convs = nn.ModuleList()
        for out_ch in channels:
            self.convs.append(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2))
            in_ch = out_ch
            h, w = h // pool, w // pool
        if h < 1 or w < 1:
            raise ValueError(f"image {obs_shape} is too small for {len(channels)} pool-{pool} blocks")
        self.pool = pool
        self.repr_dim = channels[-1] * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float in [-0.5, 0.5] -> (B, repr_dim)."""
        for conv in self.convs:
            x = torch.relu(F.max_pool2d(conv(x), self.pool))
        return x.flatten(1)


def scale_frames(obs: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 frames in [0, 255] -> float in [-0.5, 0.5] (DrQ's scaling)."""
    x = obs.float()
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x / 255.0 - 0.5


class Encoder(nn.Module):
    """Shared encoder f_enc of a pack.

    Pixels (``obs_shape = (C, H, W)``, uint8): one :class:`ConvEncoder` per member; frames (K, B, C, H, W)
    -> features (K, B, repr_dim). On the CPU the members run one after the other (``channels_last`` memory
    format: the same function, faster max-pool); on other devices as one grouped convolution over the pack.
    State (``obs_shape = (D,)``): with ``members`` (one :func:`state_encoder` per member) a learned encoder,
    (K, B, D) -> Linear-ReLU stack -> LayerNorm (if the members have one) -> tanh -> (K, B, F), and with
    ``skip`` the float state itself in front of those features, [s, f(s)] -> (K, B, D + F) (the dense input
    of D2RL and OFENet: the heads keep the state a policy without an encoder reads, however the losses
    move f); without ``members``, the identity (features = the float state).
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        n_members: int,
        channels: tuple[int, ...] = (16, 16, 32),
        kernel: int = 5,
        pool: int = 2,
        channels_last: bool = True,
        members: Sequence[nn.Module] | None = None,
        skip: bool = False,
    ):
        super().__init__()
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.skip = False
        self.is_pixel = len(self.obs_shape) == 3
        self.channels_last = channels_last
        # None: member by member on the CPU (pack-invariant), grouped elsewhere; True / False force a path.
        self.grouped: bool | None = None
        self.members = None
        self.mlp = None
        self.norm = None
        if self.is_pixel:
            if members is None:
                members = [ConvEncoder(self.obs_shape, channels, kernel, pool) for _ in range(n_members)]
            self.members = nn.ModuleList(members)
            self.repr_dim = self.members[0].repr_dim
        elif len(self.obs_shape) == 1:
            if members is not None:
                self.mlp = PackMLP(members)
                self.repr_dim = self.mlp.layers[-1].members[0].out_features
                if isinstance(members[0][-1], nn.LayerNorm):
                    self.norm = PackLayerNorm([m[-1] for m in members])
                self.skip = skip
                if skip:
                    self.repr_dim += self.obs_shape[0]
            else:
                self.repr_dim = self.obs_shape[0]
        else:
            raise ValueError(
                f"obs_shape must be (C, H, W) for pixels or (D,) for state, got {self.obs_shape}"
            )

    @property
    def learned(self) -> bool:
        """Whether the encoder has parameters (pixels, or a learned state encoder)."""
        return self.is_pixel or self.mlp is not None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(K, B, C, H, W) uint8 -> (K, B, repr_dim) float; (K, B, D) -> (K, B, repr_dim) float."""
        if not self.is_pixel:
            if self.mlp is None:
                return obs.float()
            x = self.mlp(obs.float())
            if self.norm is not None:
                x = self.norm(x)
            # tanh member by member: a member's elements then always sit in the same vector lanes of the
            # CPU kernel, whatever the pack (see the module docstring).
            x = torch.stack([torch.tanh(xk) for xk in x])
            if self.skip:  # the state itself beside the learned features (D2RL's dense input)
                x = torch.cat([obs.float(), x], dim=-1)
            return x
        grouped = self.grouped if self.grouped is not None else obs.device.type != "cpu"
        if not grouped:
            return torch.stack(
                [enc(scale_frames(x, self.channels_last)) for enc, x in zip(self.members, obs, strict=True)]
            )
        return self._grouped(obs)

    def _grouped(self, obs: torch.Tensor) -> torch.Tensor:
        """All members as one grouped convolution: member k's channels are group k."""
        k, b = obs.shape[:2]
        x = scale_frames(obs).transpose(0, 1).flatten(1, 2)  # (B, K * C, H, W)
        pool = self.members[0].pool
        for i in range(len(self.members[0].convs)):
            convs = [member.convs[i] for member in self.members]
            weight = torch.cat([c.weight for c in convs])
            bias = torch.cat([c.bias for c in convs])
            x = F.conv2d(x, weight, bias, padding=convs[0].padding, groups=k)
            x = torch.relu(F.max_pool2d(x, pool))
        return x.view(b, k, -1).transpose(0, 1)  # (K, B, C * h * w), each member's C-major flatten


# ------------------------------------------------------------------------------------------------- heads
class Actor(nn.Module):
    """Tanh-squashed Gaussian policy pi(a | f_enc(s)); log-std hard-clipped to [log_std_min, log_std_max]."""

    def __init__(self, members: Sequence[nn.Sequential], log_std_min: float, log_std_max: float):
        super().__init__()
        self.net = PackMLP(members)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, B, repr_dim) -> mean (K, B, A) and clipped log-std (K, B, A) of the pre-tanh Gaussian."""
        mean, log_std = self.net(features).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, features: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample a = tanh(mean + std * noise) (K, B, A) and its log-probability (K, B) under
        the squashed Gaussian. ``noise`` (K, B, A) is standard normal, drawn by the caller from each
        member's own generator."""
        mean, log_std = self(features)
        u = mean + log_std.exp() * noise
        return torch.tanh(u), squashed_gaussian_log_prob(u, noise, log_std)

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """Deterministic action tanh(mean), (K, B, A)."""
        return torch.tanh(self(features)[0])


def squashed_gaussian_log_prob(u: torch.Tensor, noise: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(tanh(u)) for u = mean + std * noise, summed over the action axis -> (..., B).

    Gaussian term -noise^2/2 - log_std - log(2 pi)/2, minus log(1 - tanh(u)^2) written in the stable form
    2 (log 2 - u - softplus(-2u)) (as in SAC implementations), so saturated actions give no log(0)."""
    gaussian = -0.5 * noise.pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gaussian - log_det).sum(-1)


class Critic(nn.Module):
    """Twin soft Q-functions Q1, Q2 on [f_enc(s), a]: the K members' Q1 and Q2 networks as one pack of 2K
    MLPs (first the Q1s, then the Q2s), so both run in one product per layer."""

    def __init__(self, q1: Sequence[nn.Sequential], q2: Sequence[nn.Sequential]):
        super().__init__()
        self.n_members = len(q1)
        self.q = PackMLP([*q1, *q2])

    def forward(
        self, features: torch.Tensor, action: torch.Tensor, detach_params: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, B, repr_dim), (K, B, A) -> Q1 (K, B), Q2 (K, B). ``detach_params``: the parameters are held
        constant, the gradient reaches the features and the action only (the critic inside the actor loss)."""
        x = torch.cat([features, action], dim=-1)
        q = self.q(torch.cat([x, x]), detach_params).squeeze(-1)
        return q[: self.n_members], q[self.n_members :]


class InverseModel(nn.Module):
    """f_inv: [f_enc(s), f_enc(s')] -> action (Eq. 1); optionally tanh-squashed into the action box."""

    def __init__(self, members: Sequence[nn.Sequential], output_tanh: bool = True):
        super().__init__()
        self.net = PackMLP(members)
        self.output_tanh = output_tanh

    def forward(self, features: torch.Tensor, next_features: torch.Tensor) -> torch.Tensor:
        """(K, B, repr_dim), (K, B, repr_dim) -> predicted action (K, B, A)."""
        action = self.net(torch.cat([features, next_features], dim=-1))
        return torch.tanh(action) if self.output_tanh else action


class Discriminator(nn.Module):
    """Domain discriminator: f_enc(s) -> logit of P(observation domain); interaction = 0, observation = 1."""

    def __init__(self, members: Sequence[nn.Sequential]):
        super().__init__()
        self.net = PackMLP(members)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(K, B, repr_dim) -> logits (K, B)."""
        return self.net(features).squeeze(-1)


class MemberMotionExtractor(nn.Module):
    """One member's f_mem (RLMU report Fig. 1 right): per-frame encodings (B, k, repr_dim) -> LSTM -> linear
    -> K position-class logits, read at the last frame."""

    def __init__(self, repr_dim: int, n_classes: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(repr_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, frame_features: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(frame_features)
        return self.head(out[:, -1])


class MotionExtractor(nn.Module):
    """f_mem of a pack: the members' LSTMs run one after the other (the shared encoder is applied outside,
    by the agent, so its gradient flows)."""

    def __init__(self, members: Sequence[MemberMotionExtractor]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, frame_features: torch.Tensor) -> torch.Tensor:
        """(K, B, k, repr_dim) -> position-class logits (K, B, n_classes)."""
        return torch.stack([m(x) for m, x in zip(self.members, frame_features, strict=True)])
