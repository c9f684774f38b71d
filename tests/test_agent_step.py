"""The optimizer step of an update, held against Adam's own equation.

Adam's first step from a fresh state moves a parameter by -lr * g / (|g| + eps), element by element (the
bias-corrected moments are g and g^2). So after one update every parameter must have moved by exactly that,
with g the gradient the agent computed for it: per loss and summed over the losses in per-loss mode (one
Adam each), per parameter group with the scaled gradients summed in summed mode. A gradient applied to the
wrong elements (a transposed gradient read in memory order, as the fused CPU kernel does with a
non-contiguous gradient) moves about half the weights the wrong way and fails here."""

import pytest
import torch

from tests.test_agent import batches, make_agent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STATE = (5,)


def first_update(agent, seeds):
    """One update of a fresh agent: the parameters before it and the per-loss gradients it computed."""
    grads: dict = {}
    step = agent._step

    def recording_step(losses):
        out = step(losses)
        grads.update(out)
        return out

    agent._step = recording_step
    before = {p: p.detach().clone() for net in agent.networks.values() for p in net.parameters()}
    before.update({p: p.detach().clone() for p in agent.log_alphas})
    obs_shape = agent.obs_shape
    inter, obs, paired, mem = batches(seeds, 0, obs_shape=obs_shape)
    agent.update(inter, obs, paired, mem)
    return before, grads


def expected_moves(agent, grads) -> dict:
    """Adam's first step for every parameter that received a gradient."""
    moves: dict = {}
    if agent.cfg.rlv.per_loss_optimizers:
        for name, pairs in grads.items():
            opt = agent.optimizers[name]
            lr, eps = opt.param_groups[0]["lr"], opt.defaults["eps"]
            for p, g in pairs.items():
                moves[p] = moves.get(p, 0.0) - lr * g / (g.abs() + eps)
    else:
        summed: dict = {}
        for pairs in grads.values():
            for p, g in pairs.items():
                summed[p] = summed[p] + g if p in summed else g
        for name, opt in agent.optimizers.items():
            if not name.startswith("group_"):
                continue
            lr, eps = opt.param_groups[0]["lr"], opt.defaults["eps"]
            for p in opt.param_groups[0]["params"]:
                if p in summed:
                    moves[p] = -lr * summed[p] / (summed[p].abs() + eps)
    return moves


@pytest.mark.parametrize("per_loss", [True, False], ids=["per_loss", "summed"])
@pytest.mark.parametrize(
    "variant,obs_shape",
    [("sac", STATE), ("rlv_nopair", STATE), ("rlmu", STATE), ("sac", None), ("rlv", None), ("rlmu", None)],
    ids=["sac-state", "rlv_nopair-state", "rlmu-state", "sac-pixels", "rlv-pixels", "rlmu-pixels"],
)
def test_first_update_is_adams_step_on_each_parameters_own_gradient(variant, obs_shape, per_loss):
    seeds = (0, 1)
    kw = {"obs_shape": obs_shape} if obs_shape else {}
    agent = make_agent(variant, seeds, rlv={"per_loss_optimizers": per_loss}, **kw)
    before, grads = first_update(agent, seeds)
    moves = expected_moves(agent, grads)
    assert moves, "the update computed no gradients"
    # Weight matrices are among the checked parameters (their gradients are the transposed views).
    assert any(p.dim() == 2 and p.shape[0] > 1 and p.shape[1] > 1 for p in moves)
    checked = 0
    for p, move in moves.items():
        actual = p.detach() - before[p]
        # A parameter difference in float32 carries a few ulps of the parameter (one per Adam applied);
        # a misapplied gradient is off by up to 2 lr = 6e-4.
        ulps = 4 * torch.finfo(torch.float32).eps * (before[p].abs() + p.detach().abs())
        bad = (actual - move).abs() > 1e-3 * move.abs() + ulps + 1e-9
        assert not bad.any(), (
            f"parameter of shape {tuple(p.shape)}: {int(bad.sum())} of {p.numel()} elements did not take "
            f"Adam's step on their own gradient (e.g. moved {actual[bad][0].item():.3g}, expected "
            f"{move[bad][0].item():.3g})"
        )
        checked += p.numel()
    assert checked > 1000


def test_pack_weight_gradients_are_transposed_views():
    """The case the layout rule exists for: a pack layer's weight gradient through the batched product comes
    back from autograd with transposed strides, so a kernel reading memory order would misapply it."""
    agent = make_agent("sac", (0, 1), obs_shape=STATE)
    inter, _, _, _ = batches((0, 1), 0, obs_shape=STATE)
    losses = agent.compute_losses(inter)
    params = agent.group_params("critic")
    grads = torch.autograd.grad(losses["loss_critic"].sum(), params)
    assert any(g.stride() != p.stride() for p, g in zip(params, grads, strict=True))


@pytest.mark.parametrize("variant,moves", [("sac", False), ("rlv_nopair", True)])
def test_critic_trains_false_leaves_the_encoder_to_the_other_losses(variant, moves):
    """``encoder.critic_trains = False``: the critic loss no longer reaches the encoder. Plain SAC then keeps
    its random encoder; RLV's inverse model still trains it."""
    seeds = (0,)
    agent = make_agent(variant, seeds, obs_shape=STATE, encoder={"critic_trains": False})
    assert "encoder" not in agent.loss_groups["loss_critic"]
    before, grads = first_update(agent, seeds)
    encoder = agent.group_params("encoder")
    changed = any(not torch.equal(p.detach(), before[p]) for p in encoder)
    assert changed is moves
    assert all(p not in grads["loss_critic"] for p in encoder)
    default = make_agent(variant, seeds, obs_shape=STATE)
    assert "encoder" in default.loss_groups["loss_critic"]
