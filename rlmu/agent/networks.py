"""Networks, named as in the papers: ``Encoder`` (f_enc), ``Actor``, ``Critic``, ``InverseModel`` (f_inv),
``Discriminator`` and ``MotionExtractor`` (f_mem)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

# A GEMM dimension below this is "narrow": the backward orders its products so that MKL's CPU GEMM sees the
# narrow dimension as rows (for a (256, 7) input and 256 units about 25-30 us per product instead of
# 110-180 us), and a product with one output column becomes a broadcast multiply.
NARROW = 16
# Below this fraction of non-zero rows in the output gradient, the backward runs on those rows only.
SPARSE_ROWS = 0.75


def _weight_grad(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """dL/dW = grad.T @ x, (out, in), with the narrow input width on the GEMM's rows."""
    if x.shape[1] < NARROW:
        return torch.mm(x.t(), grad).t().contiguous()
    return torch.mm(grad.t(), x)


def _input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """dL/dx = grad @ W, (B, in); one output unit is a broadcast multiply."""
    if weight.shape[0] == 1:
        return grad * weight
    if weight.shape[1] < NARROW:
        return torch.mm(weight.t(), grad.t()).t()
    return torch.mm(grad, weight)


def _mlp_backward(grad, inputs, weights, need_params, need_x, batch):
    """Backward of one Linear-ReLU stack (see ``_MLPFunction``): (input gradient or None, parameter
    gradients [dW_1, db_1, ..., dW_n, db_n] with None where ``need_params`` is False)."""
    n = len(weights)
    grads: list[torch.Tensor | None] = [None] * (2 * n)
    grad_x = None
    rows = None  # indices of the non-zero rows, when the backward runs on those only
    if grad.device.type == "cpu" and grad.shape[1] <= 2 and grad.shape[0] > 1 and not any(need_params):
        nonzero = grad.any(1).nonzero().squeeze(1)
        if nonzero.numel() <= SPARSE_ROWS * grad.shape[0]:
            rows = nonzero
            grad = grad.index_select(0, rows)
            inputs = [h.index_select(0, rows) for h in inputs]
    for i in reversed(range(n)):
        if need_params[2 * i]:
            grads[2 * i] = _weight_grad(grad, inputs[i])
        if need_params[2 * i + 1]:
            grads[2 * i + 1] = grad.sum(0)
        if i == 0:
            if need_x:
                grad_x = _input_grad(grad, weights[0])
                if rows is not None:
                    grad_x = grad_x.new_zeros((batch, grad_x.shape[1])).index_copy_(0, rows, grad_x)
        elif need_x or any(need_params[: 2 * i]):
            grad = torch.ops.aten.threshold_backward(_input_grad(grad, weights[i]), inputs[i], 0)
        else:
            break
    return grad_x, grads


def _stack_layers(
    x: torch.Tensor,
    n: int,
    params: list[torch.Tensor] | tuple[torch.Tensor, ...],
    saved: list[torch.Tensor] | None = None,
    inplace: bool = True,
) -> list[torch.Tensor]:
    """The outputs of the ``len(params) / 2n`` Linear-ReLU stacks of ``n`` layers on ``x`` (parameters
    [W_1, b_1, ..., W_n, b_n] per stack, stacks one after the other); appends every hidden activation to
    ``saved``. ``inplace``: ReLU in place (not where autograd records the operations)."""
    outputs = []
    for j in range(len(params) // (2 * n)):
        h = x
        for i in range(n):
            if saved is not None and i > 0:
                saved.append(h)
            h = F.linear(h, params[2 * n * j + 2 * i], params[2 * n * j + 2 * i + 1])
            if i < n - 1:
                h = h.relu_() if inplace else torch.relu(h)
        outputs.append(h)
    return outputs


class _MLPFunction(torch.autograd.Function):
    """``k`` Linear-ReLU stacks ``x -> W_1 x + b_1 -> ReLU -> ... -> W_n h + b_n`` on one input, as one autograd
    node; the outputs are concatenated along the feature axis (the twin Q-networks: ``k = 2``).

    Inputs ``x, k, n, W_1, b_1, ..., W_n, b_n`` of the first network, then of the next (x 2-D, every network
    ``n`` layers). The forward is ``nn.Linear``'s ``addmm`` and an in-place ReLU per layer; it saves each
    layer's input. The backward computes the same products as autograd through ``nn.Sequential`` would, and
    only those some input needs (weights passed detached get no product), plus:

    - narrow GEMMs are oriented for the CPU GEMM (``_weight_grad``, ``_input_grad``);
    - on the CPU, when only the input gradient is needed, a network has at most 2 outputs and most rows of
      its output gradient are zero (the actor loss differentiates min(Q1, Q2), which sends each row's
      gradient to one Q-network only), its backward runs on the non-zero rows and scatters the input
      gradient back: zero rows add nothing to it, so the result is the same.
    """

    @staticmethod
    def forward(ctx, x, k, n, *params):
        saved: list[torch.Tensor] = []
        outputs = _stack_layers(x, n, params, saved)
        ctx.save_for_backward(x, *saved, *params[0::2])
        ctx.k, ctx.n, ctx.widths = k, n, [h.shape[1] for h in outputs]
        return outputs[0] if k == 1 else torch.cat(outputs, -1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        k, n = ctx.k, ctx.n
        saved = ctx.saved_tensors
        x, hidden, weights = saved[0], saved[1 : 1 + k * (n - 1)], saved[1 + k * (n - 1) :]
        need = ctx.needs_input_grad
        grads: list[torch.Tensor | None] = [None, None, None]
        grad_x = None
        offset = 0
        for j in range(k):
            width = ctx.widths[j]
            g = grad[:, offset : offset + width].contiguous()
            offset += width
            gx, gp = _mlp_backward(
                g,
                [x, *hidden[j * (n - 1) : (j + 1) * (n - 1)]],
                weights[j * n : (j + 1) * n],
                need[3 + 2 * n * j : 3 + 2 * n * (j + 1)],
                need[0],
                x.shape[0],
            )
            grads += gp
            if gx is not None:
                grad_x = gx if grad_x is None else grad_x.add_(gx)
        grads[0] = grad_x
        return tuple(grads)


def mlp_forward(nets: list[MLP], x: torch.Tensor, grad_params: bool = True) -> torch.Tensor:
    """The Linear-ReLU stacks ``nets`` (same depth) on one input, outputs concatenated along the last axis.

    2-D inputs run as one :class:`_MLPFunction` node. ``grad_params=False`` treats the parameters as
    constants: the gradient reaches ``x`` only, and no weight-gradient product is computed (the critic inside
    the actor loss, whose gradient must not reach the critic's parameters)."""
    params = [t for net in nets for t in net.linear_params()]
    if not grad_params:
        params = [p.detach() for p in params]
    n = len(params) // (2 * len(nets))
    if x.dim() == 2 and torch.is_grad_enabled():
        return _MLPFunction.apply(x, len(nets), n, *params)
    # Without gradients (acting, targets) or for inputs other than 2-D: the plain layers.
    outputs = _stack_layers(x, n, params, inplace=not torch.is_grad_enabled())
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, -1)


class MLP(nn.Sequential):
    """Linear-ReLU stack: an ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` (same parameters, initialisation
    and state-dict keys) that runs through :func:`mlp_forward`."""

    def __init__(self, *layers: nn.Module):
        super().__init__(*layers)
        self._linears = [m._parameters for m in self if isinstance(m, nn.Linear)]

    def linear_params(self) -> list[torch.Tensor]:
        """[W_1, b_1, ..., W_n, b_n], read from the layers' parameter dicts (cheaper than attribute access,
        and always the current parameter objects)."""
        return [p for d in self._linears for p in (d["weight"], d["bias"])]

    def forward(self, x: torch.Tensor, grad_params: bool = True) -> torch.Tensor:
        return mlp_forward([self], x, grad_params)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> MLP:
    """Linear-ReLU stack: in_dim -> hidden... -> out_dim (no output activation)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU(inplace=True)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return MLP(*layers)


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
        if not log_prob:
            mean, log_std = self(features)
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            return torch.tanh(mean + log_std.exp() * noise), None
        out = self.net(features)
        return _SquashedGaussianSample.apply(
            out, policy_noise(out, generator), self.log_std_min, self.log_std_max
        )

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


class _SquashedGaussianSample(torch.autograd.Function):
    """The actor's reparameterised sample as one autograd node: from the raw head output [mean, log_std']
    (B, 2A) and the standard-normal noise (B, A), with log_std = clamp(log_std', min, max), std = exp(log_std)
    and u = mean + std * noise: action = tanh(u) and ``squashed_gaussian_log_prob(u, noise, log_std)``.

    Backward, by hand (the same derivative autograd takes through the separate operations): with
    d log_prob / du = 2 tanh(u) (the derivative of -2 (log 2 - u - softplus(-2u))) and
    d tanh(u) / du = 1 - tanh(u)^2, g_u = g_action (1 - action^2) + 2 g_logp action; then
    d mean = g_u and d log_std = g_u std noise - g_logp, passed to log_std' where it lies within the clamp
    bounds (bounds included, as ``torch.clamp``)."""

    @staticmethod
    def forward(ctx, out, noise, log_std_min, log_std_max):
        action, lp, std_noise = squashed_gaussian_sample(out, noise, log_std_min, log_std_max)
        ctx.save_for_backward(action, std_noise, out)
        ctx.bounds = (log_std_min, log_std_max)
        return action, lp

    @staticmethod
    @once_differentiable
    def backward(ctx, g_action, g_logp):
        action, std_noise, out = ctx.saved_tensors
        g_out = squashed_gaussian_sample_backward(g_action, g_logp, action, std_noise, out, *ctx.bounds)
        return g_out, None, None, None


def policy_noise(out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard-normal noise (B, A) for the sample from the actor's head output ``out`` (B, 2A)."""
    shape = (*out.shape[:-1], out.shape[-1] // 2)
    return torch.randn(shape, generator=generator, device=out.device, dtype=out.dtype)


def squashed_gaussian_sample(
    out: torch.Tensor, noise: torch.Tensor, log_std_min: float, log_std_max: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The forward of :class:`_SquashedGaussianSample`: action (B, A), log-probability (B,) and std * noise
    (B, A), kept for the backward."""
    a = out.shape[-1] // 2
    mean, raw = out[..., :a], out[..., a:]
    log_std = raw.clamp(log_std_min, log_std_max)
    std_noise = log_std.exp().mul_(noise)
    u = mean + std_noise
    return torch.tanh(u), squashed_gaussian_log_prob(u, noise, log_std), std_noise


def squashed_gaussian_sample_backward(
    g_action: torch.Tensor,
    g_log_prob: torch.Tensor,
    action: torch.Tensor,
    std_noise: torch.Tensor,
    out: torch.Tensor,
    log_std_min: float,
    log_std_max: float,
) -> torch.Tensor:
    """The backward of :class:`_SquashedGaussianSample`: the gradient (B, 2A) with respect to the head output
    ``out`` from those of the action (B, A) and the log-probability (B,)."""
    raw = out[..., out.shape[-1] // 2 :]
    g_log_prob = g_log_prob.unsqueeze(-1)
    g_u = torch.addcmul(g_action * (1.0 - action * action), g_log_prob, action, value=2.0)
    mask = (raw >= log_std_min) & (raw <= log_std_max)
    g_log_std = torch.addcmul(-g_log_prob, g_u, std_noise).mul_(mask)
    return torch.cat([g_u, g_log_std], -1)


class Critic(nn.Module):
    """Twin soft Q-functions Q1, Q2 on [f_enc(s), a]."""

    def __init__(self, repr_dim: int, action_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.q1 = mlp(repr_dim + action_dim, hidden, 1)
        self.q2 = mlp(repr_dim + action_dim, hidden, 1)

    def forward(
        self, features: torch.Tensor, action: torch.Tensor, grad_params: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, repr_dim), (B, A) -> Q1 (B,), Q2 (B,). ``grad_params=False``: parameters held constant
        (``MLP.forward``), the gradient reaches the features and the action only."""
        q = mlp_forward([self.q1, self.q2], torch.cat([features, action], dim=-1), grad_params)
        q1, q2 = q.unbind(-1)
        return q1, q2


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
