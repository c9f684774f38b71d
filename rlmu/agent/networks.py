"""Networks, named as in the papers: ``Encoder`` (f_enc), ``Actor``, ``Critic``, ``InverseModel`` (f_inv),
``Discriminator`` and ``MotionExtractor`` (f_mem)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class _NarrowLinearFunction(torch.autograd.Function):
    """``x @ W.T + b`` whose backward computes ``dW`` as ``(x.T @ dY).T`` and ``dx`` as ``(W.T @ dY.T).T``.

    Same products as ``nn.Linear``'s backward, ordered so that the CPU GEMM sees the narrow dimension
    (the input width, e.g. 6 + 1 for Acrobot's state and action) as rows rather than columns: for a
    (256, 7) input and 256 units the two backward products take about 25-30 us instead of 110-180 us.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.mm(weight.t(), grad_out.t()).t()
        if ctx.needs_input_grad[1]:
            grad_w = torch.mm(x.t(), grad_out).t().contiguous()
        if ctx.needs_input_grad[2]:
            grad_b = grad_out.sum(0)
        return grad_x, grad_w, grad_b


class NarrowLinear(nn.Linear):
    """``nn.Linear`` (same parameters, initialisation and state-dict keys) for inputs with few features:
    2-D inputs go through :class:`_NarrowLinearFunction`, anything else through ``nn.Linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and self.bias is not None and x.device.type == "cpu":
            return _NarrowLinearFunction.apply(x, self.weight, self.bias)
        return super().forward(x)


# Inputs narrower than this use NarrowLinear on the CPU (measured faster below 16 features).
NARROW_INPUT = 16


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Linear-ReLU stack: in_dim -> hidden... -> out_dim (no output activation)."""
    layers: list[nn.Module] = []
    for width in hidden:
        linear = NarrowLinear if in_dim < NARROW_INPUT else nn.Linear
        layers += [linear(in_dim, width), nn.ReLU(inplace=True)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Shared encoder f_enc.

    Pixels (``obs_shape = (C, H, W)``, uint8 in [0, 255]): ``len(channels)`` blocks of [conv k x k 'same',
    ReLU, max-pool] [released RLV]; 16, 16, 32 channels at 48 px give 6 x 6 x 32 = 1152 features.
    Input scaling x / 255 - 0.5 (DrQ). State (``obs_shape = (D,)``): the identity, features = the float state.
    """

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        channels: tuple[int, ...] = (16, 16, 32),
        kernel: int = 5,
        pool: int = 2,
        channels_last: bool = True,
    ):
        super().__init__()
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.is_pixel = len(self.obs_shape) == 3
        self.channels_last = channels_last and self.is_pixel
        if self.is_pixel:
            blocks: list[nn.Module] = []
            in_ch = self.obs_shape[0]
            for out_ch in channels:
                # [conv, ReLU, max-pool] computed as [conv, max-pool, ReLU]: ReLU is monotonic, so both
                # orders give the same function, and the ReLU then runs on pool^2 times fewer elements.
                blocks += [
                    nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2),
                    nn.MaxPool2d(pool),
                    nn.ReLU(inplace=True),
                ]
                in_ch = out_ch
            self.convs = nn.Sequential(*blocks)
            h, w = self.obs_shape[1:]
            for _ in channels:
                h, w = h // pool, w // pool
            if h < 1 or w < 1:
                raise ValueError(
                    f"image {self.obs_shape} is too small for {len(channels)} pool-{pool} blocks"
                )
            self.repr_dim = channels[-1] * h * w
            if self.channels_last:
                self.convs = self.convs.to(memory_format=torch.channels_last)
        elif len(self.obs_shape) == 1:
            self.convs = None
            self.repr_dim = self.obs_shape[0]
        else:
            raise ValueError(
                f"obs_shape must be (C, H, W) for pixels or (D,) for state, got {self.obs_shape}"
            )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) uint8 -> (B, repr_dim) float; (B, D) -> (B, D) float."""
        if not self.is_pixel:
            return obs.float()
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = torch.empty(obs.shape, dtype=torch.float32, device=obs.device, memory_format=fmt).copy_(obs)
        return self.convs(x.mul_(1.0 / 255.0).sub_(0.5)).flatten(1)


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy pi(a | f_enc(s)); log-std hard-clipped to [log_std_min, log_std_max]."""

    def __init__(
        self, repr_dim: int, action_dim: int, hidden: tuple[int, ...], log_std_min: float, log_std_max: float
    ):
        super().__init__()
        self.net = mlp(repr_dim, hidden, 2 * action_dim)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, repr_dim) -> mean (B, A) and clipped log-std (B, A) of the pre-tanh Gaussian."""
        mean, log_std = self.net(features).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(
        self, features: torch.Tensor, generator: torch.Generator | None = None, log_prob: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Reparameterised sample: action (B, A) in (-1, 1) and its log-probability (B,) under the squashed
        Gaussian (``None`` with ``log_prob=False``, for acting). The noise comes from ``generator`` (the
        agent's RNG)."""
        mean, log_std = self(features)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + log_std.exp() * noise
        return torch.tanh(u), squashed_gaussian_log_prob(u, noise, log_std) if log_prob else None

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """Deterministic action tanh(mean), (B, A)."""
        return torch.tanh(self(features)[0])


def squashed_gaussian_log_prob(u: torch.Tensor, noise: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(tanh(u)) for u = mean + std * noise, summed over the action axis -> (B,).

    Gaussian term -noise^2/2 - log_std - log(2 pi)/2, minus log(1 - tanh(u)^2) written in the stable form
    2 (log 2 - u - softplus(-2u)) (as in SAC implementations), so saturated actions give no log(0)."""
    gaussian = -0.5 * noise.pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gaussian - log_det).sum(-1)


class Critic(nn.Module):
    """Twin soft Q-functions Q1, Q2 on [f_enc(s), a]."""

    def __init__(self, repr_dim: int, action_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.q1 = mlp(repr_dim + action_dim, hidden, 1)
        self.q2 = mlp(repr_dim + action_dim, hidden, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, repr_dim), (B, A) -> Q1 (B,), Q2 (B,)."""
        x = torch.cat([features, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class InverseModel(nn.Module):
    """f_inv: [f_enc(s), f_enc(s')] -> action (Eq. 1); optionally tanh-squashed into the action box."""

    def __init__(self, repr_dim: int, action_dim: int, hidden: tuple[int, ...], output_tanh: bool = True):
        super().__init__()
        self.net = mlp(2 * repr_dim, hidden, action_dim)
        self.output_tanh = output_tanh

    def forward(self, features: torch.Tensor, next_features: torch.Tensor) -> torch.Tensor:
        """(B, repr_dim), (B, repr_dim) -> predicted action (B, A)."""
        action = self.net(torch.cat([features, next_features], dim=-1))
        return torch.tanh(action) if self.output_tanh else action


class Discriminator(nn.Module):
    """Domain discriminator: f_enc(s) -> logit of P(observation domain); interaction = 0, observation = 1."""

    def __init__(self, repr_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = mlp(repr_dim, hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, repr_dim) -> logits (B,)."""
        return self.net(features).squeeze(-1)


class MotionExtractor(nn.Module):
    """f_mem (RLMU report Fig. 1 right): per-frame encodings (B, k, repr_dim) -> LSTM -> linear -> K logits,
    read at the last frame. The shared encoder is applied outside (by the agent), so its gradient flows."""

    def __init__(self, repr_dim: int, n_classes: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(repr_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, frame_features: torch.Tensor) -> torch.Tensor:
        """(B, k, repr_dim) -> position-class logits (B, K)."""
        out, _ = self.lstm(frame_features)
        return self.head(out[:, -1])
