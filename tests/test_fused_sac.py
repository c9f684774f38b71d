"""The hand-differentiated SAC update (``rlmu/agent/fused_sac.py``) against autograd through
``Agent.compute_losses``: the same losses, gradients and updates, bit for bit on the CPU."""

import pytest
import torch
from test_resume import tiny_overrides

from rlmu.agent import Agent, AgentConfig
from rlmu.train.config import load_config
from rlmu.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_agent(hidden=(16, 16), action_dim=2, obs_dim=5, batch=6, seed=0, **over):
    cfg = {"sac": {"hidden": list(hidden), "batch_size": batch, **over.pop("sac", {})}, **over}
    torch.manual_seed(seed)
    return Agent(AgentConfig.model_validate(cfg), (obs_dim,), action_dim)


def make_batch(agent, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    d, a = agent.obs_shape[0], agent.action_dim
    return {
        "obs": torch.randn(n, d, generator=g),
        "next_obs": torch.randn(n, d, generator=g),
        "action": torch.rand(n, a, generator=g) * 2 - 1,
        "reward": torch.randn(n, generator=g),
        "terminal": (torch.rand(n, generator=g) < 0.3).float(),
    }


def sac_params(agent):
    return [*agent._params["actor"], *agent._params["critic"], agent.log_alpha]


def autograd_losses_and_grads(agent, batch):
    losses = agent.compute_losses(batch)
    total = losses["loss_critic"] + losses["loss_actor"] + losses["loss_alpha"]
    grads = torch.autograd.grad(total, sac_params(agent))
    return {k: v.detach() for k, v in losses.items()}, grads


def fused_losses_and_grads(agent, batch):
    losses, pairs = agent._fused_sac_losses(batch)
    by_param = dict(pairs)
    assert set(by_param) == set(sac_params(agent))
    return losses, [by_param[p] for p in sac_params(agent)]


def assert_same(agent, batch):
    state = agent.rng.get_state()
    ref_losses, ref_grads = autograd_losses_and_grads(agent, batch)
    agent.rng.set_state(state)
    losses, grads = fused_losses_and_grads(agent, batch)
    assert set(losses) == set(ref_losses)
    for name in ref_losses:
        assert torch.equal(losses[name], ref_losses[name]), name
    for i, (g, ref) in enumerate(zip(grads, ref_grads, strict=True)):
        assert g.shape == ref.shape, i
        assert torch.equal(g, ref), (i, (g - ref).abs().max().item())
    # Both paths drew the same noise: the generator ends in the same state.
    after_fused = agent.rng.get_state()
    agent.rng.set_state(state)
    autograd_losses_and_grads(agent, batch)
    assert torch.equal(agent.rng.get_state(), after_fused)


@pytest.mark.parametrize(
    "hidden, action_dim, batch",
    [((16, 16), 2, 6), ((16, 16), 1, 256), ((8, 12, 8), 3, 100), ((32,), 1, 7)],
)
def test_losses_and_gradients_are_autograds_bit_for_bit(hidden, action_dim, batch):
    agent = make_agent(hidden, action_dim, batch=batch)
    assert agent.fused_sac
    for seed in range(3):
        assert_same(agent, make_batch(agent, batch, seed))


def test_ties_between_the_q_networks_split_the_gradient_as_torch_minimum():
    agent = make_agent()
    agent.critic.q2.load_state_dict(agent.critic.q1.state_dict())  # Q1 == Q2 on every row
    assert_same(agent, make_batch(agent, 6))


@pytest.mark.parametrize("bias", [5.0, -15.0])
def test_clamped_log_std_gets_no_gradient_as_in_autograd(bias):
    agent = make_agent(sac={"log_std_min": -10.0, "log_std_max": 2.0})
    with torch.no_grad():
        agent.actor.net[-1].bias[agent.action_dim :] = bias  # the log-std head beyond a clamp bound
    assert_same(agent, make_batch(agent, 6))
    _, grads = fused_losses_and_grads(agent, make_batch(agent, 6))
    last_bias = grads[len(agent._params["actor"]) - 1]
    assert torch.all(last_bias[agent.action_dim :] == 0)


def test_updates_equal_the_autograd_path():
    fused, plain = make_agent(seed=3), make_agent(seed=3)
    plain.fused_sac = False
    for step in range(6):
        batch = make_batch(fused, 6, seed=step)
        assert fused.update(batch) == plain.update(batch)
    for name in ("actor", "critic", "critic_target"):
        a, b = fused.networks[name].state_dict(), plain.networks[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert torch.equal(fused.log_alpha, plain.log_alpha)
    sa, sb = fused.optimizers["joint"].state_dict(), plain.optimizers["joint"].state_dict()
    for i, st in sa["state"].items():
        assert all(torch.equal(st[k], sb["state"][i][k]) for k in st)


def test_used_only_for_sac_on_parameter_free_features():
    assert make_agent().fused_sac
    assert make_agent(rlv={"per_loss_optimizers": False}).fused_sac
    assert make_agent(sac={"actor_updates_encoder": True}).fused_sac  # the identity has no parameters
    assert not make_agent(rlv={"enabled": True, "inverse_hidden": [8], "discriminator_hidden": [8]}).fused_sac
    torch.manual_seed(0)
    pixel = Agent(AgentConfig.model_validate({"encoder": {"channels": [4], "kernel": 3}}), (3, 16, 16), 2)
    assert not pixel.fused_sac


def test_bad_batches_are_reported_as_on_the_autograd_path():
    agent = make_agent()
    batch = make_batch(agent, 6)
    with pytest.raises(KeyError, match="reward"):
        agent.update({k: v for k, v in batch.items() if k != "reward"})
    with pytest.raises(ValueError, match="'next_obs' has shape"):
        agent.update(dict(batch, next_obs=torch.zeros(6, 4)))


def test_a_training_run_writes_the_autograd_paths_csv(tmp_path):
    cfg = load_config(None, tiny_overrides("sac", None, epochs=2))
    runs = {}
    for fused in (True, False):
        trainer = Trainer(cfg, tmp_path / str(fused), progress=False, log=lambda m: None)
        assert trainer.agent.fused_sac
        trainer.agent.fused_sac = fused
        assert trainer.run() == 0
        runs[fused] = (tmp_path / str(fused) / "progress.csv").read_bytes()
    assert runs[True] == runs[False]
