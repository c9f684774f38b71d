"""The agent: variants as configs, gradient routing, optimizer modes, determinism, checkpoints, divergence."""

import io

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from rlmu.agent import Agent, AgentConfig, DivergenceError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


OBS = (3, 16, 16)
A = 2
SMALL = {
    "sac": {"hidden": [16, 16], "batch_size": 6},
    "encoder": {"channels": [4, 4, 8], "kernel": 3},
    "rlv": {"inverse_hidden": [8], "discriminator_hidden": [8], "obs_batch_size": 5},
    "mem": {"n_classes": 3, "subseq_len": 3, "lstm_layers": 2, "lstm_hidden": 8, "batch_size": 2},
}
VARIANTS = {
    "sac": {},
    "rlv": {"rlv": {"enabled": True, "paired": True}},
    "rlmu": {"rlv": {"enabled": True}, "mem": {"enabled": True}},
}


def make_cfg(**over) -> AgentConfig:
    cfg = {k: dict(v) for k, v in SMALL.items()}
    for section, values in over.items():
        cfg[section].update(values)
    return AgentConfig.model_validate(cfg)


def make_agent(variant="sac", seed=0, obs_shape=OBS, **over) -> Agent:
    merged = {k: dict(v) for k, v in VARIANTS[variant].items()}
    for section, values in over.items():
        merged.setdefault(section, {}).update(values)
    torch.manual_seed(seed)
    return Agent(make_cfg(**merged), obs_shape, A)


def frames(g, *shape):
    return torch.randint(0, 256, (*shape, *OBS), dtype=torch.uint8, generator=g)


def batches(seed=0, n=6, m=5):
    """Interaction, observation, paired and MEM batches with fixed content."""
    g = torch.Generator().manual_seed(seed)
    inter = {
        "obs": frames(g, n),
        "next_obs": frames(g, n),
        "action": torch.rand(n, A, generator=g) * 2 - 1,
        "reward": torch.rand(n, generator=g),
        "terminal": (torch.rand(n, generator=g) < 0.3).float(),
    }
    obs = {
        "obs": frames(g, m),
        "next_obs": frames(g, m),
        "reward": torch.zeros(m),
        "terminal": torch.tensor([0.0] * (m - 1) + [1.0]),
    }
    paired = {"robot": frames(g, 3), "human": frames(g, 3)}
    mem = {"frames": frames(g, 2, 3), "label": torch.tensor([0, 2])}
    return inter, obs, paired, mem


def params(agent):
    return {
        f"{n}.{k}": v.detach().clone()
        for n, net in agent.networks.items()
        for k, v in net.state_dict().items()
    }


def encoder_grads(agent, loss):
    return torch.autograd.grad(loss, list(agent.encoder.parameters()), retain_graph=True, allow_unused=True)


# -------------------------------------------------------------------------------------------- config
def test_config_rejects_unknown_and_out_of_range_naming_the_field():
    with pytest.raises(ValidationError, match=r"sac\.gama"):
        AgentConfig.model_validate({"sac": {"gama": 0.9}})
    with pytest.raises(ValidationError, match=r"sac\.gamma"):
        AgentConfig.model_validate({"sac": {"gamma": 1.5}})
    with pytest.raises(ValidationError, match=r"rlv\.discriminator_mode"):
        AgentConfig.model_validate({"rlv": {"discriminator_mode": "sometimes"}})
    with pytest.raises(ValidationError, match=r"encoder\.kernel"):
        AgentConfig.model_validate({"encoder": {"kernel": 4}})
    with pytest.raises(ValidationError, match=r"log_std_min"):
        AgentConfig.model_validate({"sac": {"log_std_min": 3.0}})
    with pytest.raises(ValidationError, match=r"rlv\.paired"):
        AgentConfig.model_validate({"rlv": {"paired": True}})
    with pytest.raises(ValidationError, match="frozen"):
        AgentConfig().sac.gamma = 0.5  # type: ignore[misc]


def test_methods_defaults():
    cfg = AgentConfig()
    assert (cfg.sac.gamma, cfg.sac.tau, cfg.sac.lr, cfg.sac.batch_size) == (0.99, 5e-3, 3e-4, 256)
    assert (cfg.sac.log_std_min, cfg.sac.log_std_max, cfg.sac.init_log_alpha) == (-20, 2, 0.0)
    assert cfg.sac.hidden == (512, 256, 256) and cfg.encoder.channels == (16, 16, 32)
    assert (cfg.rlv.generator_scale, cfg.rlv.discriminator_scale, cfg.rlv.paired_scale) == (1e-3, 1e-8, 1e-6)
    assert (cfg.mem.n_classes, cfg.mem.subseq_len, cfg.mem.lstm_layers, cfg.mem.pretrain_steps) == (
        8,
        8,
        3,
        5000,
    )
    agent = Agent(cfg, (6,), 3)
    assert agent.target_entropy == -3.0


# ---------------------------------------------------------------------------------- variants and keys
@pytest.mark.parametrize(
    ("variant", "keys", "optimizers"),
    [
        ("sac", {"loss_critic", "loss_actor", "loss_alpha"}, {"joint"}),
        (
            "rlv",
            {
                "loss_critic",
                "loss_actor",
                "loss_alpha",
                "loss_inverse",
                "loss_discriminator",
                "loss_generator",
                "loss_paired",
            },
            # per-loss mode: the encoder, trained by four losses, has an Adam state per loss
            {"joint", "loss_critic", "loss_inverse", "loss_generator", "loss_paired"},
        ),
        (
            "rlmu",
            {
                "loss_critic",
                "loss_actor",
                "loss_alpha",
                "loss_inverse",
                "loss_discriminator",
                "loss_generator",
                "loss_mem",
            },
            {"joint", "loss_critic", "loss_inverse", "loss_generator", "loss_mem", "mem_pretrain"},
        ),
    ],
)
def test_update_returns_active_losses(variant, keys, optimizers):
    agent = make_agent(variant)
    inter, obs, paired, mem = batches()
    before = params(agent)
    out = agent.update(inter, obs, paired, mem)
    assert set(out) == keys | {"alpha"} and all(isinstance(v, float) and np.isfinite(v) for v in out.values())
    assert set(agent.optimizers) == optimizers and agent.update_step == 1
    after = params(agent)
    assert not torch.equal(before["encoder.convs.0.weight"], after["encoder.convs.0.weight"])
    assert not torch.equal(before["actor.net.0.weight"], after["actor.net.0.weight"])
    # Polyak: target moved by tau towards the (pre-update) critic, not onto it
    k = "critic_target.q1.0.weight"
    assert not torch.equal(before[k], after[k]) and not torch.equal(after[k], after["critic.q1.0.weight"])


def test_missing_batches_are_reported():
    inter, obs, paired, mem = batches()
    with pytest.raises(ValueError, match="obs_batch"):
        make_agent("rlv").update(inter, None, paired)
    with pytest.raises(ValueError, match="paired"):
        make_agent("rlv").update(inter, obs, None)
    with pytest.raises(ValueError, match="mem_batch"):
        make_agent("rlmu").update(inter, obs)
    with pytest.raises(ValueError, match="uint8"):
        make_agent("sac").update(dict(inter, obs=inter["obs"].float() / 255))
    with pytest.raises(ValueError, match="'human' has shape"):
        make_agent("rlv").update(inter, obs, dict(paired, human=paired["human"][:, :, :8]))
    with pytest.raises(KeyError, match="next_obs"):
        make_agent("sac").update({k: v for k, v in inter.items() if k != "next_obs"})


def test_mem_period():
    agent = make_agent("rlmu", mem={"enabled": True, "period": 2})
    inter, obs, _, mem = batches()
    assert "loss_mem" in agent.update(inter, obs, mem_batch=mem)
    assert not agent.mem_due() and "loss_mem" not in agent.update(inter, obs)  # no MEM batch needed
    assert agent.mem_due()


# ------------------------------------------------------------------------------------ gradient routing
def test_adversarial_mode_trains_encoder_released_mode_does_not():
    inter, obs, _, _ = batches()
    adv = make_agent(
        "rlmu", rlv={"enabled": True, "discriminator_mode": "adversarial"}, mem={"enabled": False}
    )
    losses = adv.compute_losses(inter, obs)
    grads = encoder_grads(adv, losses["loss_generator"])
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    # the generator step moves only the encoder, the discriminator step only the discriminator
    assert adv.loss_groups["loss_generator"] == ("encoder",)
    assert adv.loss_groups["loss_discriminator"] == ("discriminator",)

    rel = make_agent("rlmu", rlv={"enabled": True, "discriminator_mode": "released"}, mem={"enabled": False})
    losses = rel.compute_losses(inter, obs)
    assert "loss_generator" not in losses and "loss_generator" not in rel.optimizers
    assert all(g is None for g in encoder_grads(rel, losses["loss_discriminator"]))

    off = make_agent("rlmu", rlv={"enabled": True, "discriminator_mode": "off"}, mem={"enabled": False})
    assert off.discriminator is None and "loss_discriminator" not in off.compute_losses(inter, obs)


def test_reversal_generator_is_minus_discriminator():
    inter, obs, _, _ = batches()
    agent = make_agent("rlmu", rlv={"enabled": True, "generator_loss": "reversal"}, mem={"enabled": False})
    losses = agent.compute_losses(inter, obs)
    assert losses["loss_generator"].item() == pytest.approx(-losses["loss_discriminator"].item())


def test_mem_and_paired_losses_reach_encoder_and_actor_is_detached():
    inter, obs, paired, mem = batches()
    agent = make_agent("rlmu")
    losses = agent.compute_losses(inter, obs, mem_batch=mem)
    assert sum(g.abs().sum() for g in encoder_grads(agent, losses["loss_mem"])) > 0
    assert all(g is None for g in encoder_grads(agent, losses["loss_actor"]))  # actor_updates_encoder False
    rlv = make_agent("rlv")
    losses = rlv.compute_losses(inter, obs, paired)
    assert sum(g.abs().sum() for g in encoder_grads(rlv, losses["loss_paired"])) > 0
    coupled = make_agent("sac", sac={"actor_updates_encoder": True})
    losses = coupled.compute_losses(inter)
    assert sum(g.abs().sum() for g in encoder_grads(coupled, losses["loss_actor"])) > 0
    assert coupled.loss_groups["loss_actor"] == ("encoder", "actor")


def test_observation_actions_are_detached_inverse_predictions():
    inter, obs, _, _ = batches()
    agent = make_agent("rlmu", encoder={"augment": False}, mem={"enabled": False})
    seen = []
    original = agent.critic.forward
    agent.critic.forward = lambda h, a, **kw: (seen.append(a), original(h, a, **kw))[1]
    losses = agent.compute_losses(inter, obs)
    n = inter["obs"].shape[0]
    critic_action = seen[0]
    assert critic_action.shape[0] == n + obs["obs"].shape[0]  # all 512 (here 6 + 5) transitions
    assert torch.equal(critic_action[:n], inter["action"])
    with torch.no_grad():
        expected = agent.inverse_model(agent.encoder(obs["obs"]), agent.encoder(obs["next_obs"]))
    assert torch.allclose(critic_action[n:], expected, atol=1e-6)
    inv_params = list(agent.inverse_model.parameters())
    grads = torch.autograd.grad(losses["loss_critic"], inv_params, allow_unused=True)
    assert all(g is None for g in grads)  # the critic does not train the inverse model


def test_pretrain_mem_step_moves_encoder_and_mem_only():
    agent = make_agent("rlmu")
    _, _, _, mem = batches()
    before = params(agent)
    out = agent.pretrain_mem_step(mem)
    after = params(agent)
    assert set(out) == {"loss_mem"} and agent.mem_pretrain_step == 1 and agent.update_step == 0
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"encoder", "motion_extractor"}
    with pytest.raises(ValueError, match="mem.enabled"):
        make_agent("sac").pretrain_mem_step(mem)


# ------------------------------------------------------------------------------------ optimizer modes
@pytest.mark.parametrize(
    ("variant", "over"),
    [
        ("sac", {}),
        ("sac", {"sac": {"actor_updates_encoder": True}}),
        ("rlv", {}),
        ("rlv", {"rlv": {"discriminator_mode": "released", "per_loss_optimizers": False}}),
        ("rlmu", {"rlv": {"generator_loss": "reversal"}}),
    ],
)
def test_backward_plan_matches_what_each_loss_graph_reaches(variant, over):
    """Each loss's graph reaches no group outside ``_loss_reach`` (the actor loss never reaches the critic),
    and the losses sharing a backward pass reach none of that pass's groups but their own."""
    agent = make_agent(variant, **over)
    inter, obs, paired, mem = batches()
    losses = agent.compute_losses(inter, obs, paired, mem)
    groups = [g for g in agent._params if g != "critic_target" and agent._params[g]]
    params = [p for g in groups for p in agent._params[g]]
    reached = {}
    for name, loss in losses.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        owner = [g for g in groups for _ in agent._params[g]]
        reached[name] = {
            o for o, gr in zip(owner, grads, strict=True) if gr is not None and gr.abs().sum() > 0
        }
        assert reached[name] <= agent._loss_reach(name), name
    assert "critic" not in reached["loss_actor"] and "critic" in reached["loss_critic"]
    for job in agent.backward_plan:
        union = {g for n in job for g in agent.loss_groups[n]}
        for n in job:
            assert reached.get(n, set()) & union <= set(agent.loss_groups[n]), (job, n)
    assert sorted(n for job in agent.backward_plan for n in job) == sorted(agent.loss_groups)


def test_summed_mode_equals_per_loss_mode_when_no_parameter_is_shared_by_two_losses():
    # SAC: only the critic loss reaches the encoder, and Adam is elementwise, so the two modes agree.
    inter, *_ = batches()
    a = make_agent("sac", rlv={"per_loss_optimizers": True})
    b = make_agent("sac", rlv={"per_loss_optimizers": False})
    assert set(a.optimizers) == set(b.optimizers) == {"joint"}
    assert a.backward_plan == b.backward_plan == [("loss_critic", "loss_actor", "loss_alpha")]
    for _ in range(2):
        assert a.update(inter) == b.update(inter)
    pa, pb = params(a), params(b)
    assert all(torch.allclose(pa[k], pb[k], atol=1e-7) for k in pa)


@pytest.mark.parametrize("variant", ["sac", "rlmu"])
def test_direct_fused_adam_step_equals_optimizer_step(variant):
    """After the first step, the agent calls the fused Adam kernels directly on the optimizers' state; that
    gives bit-identical parameters and optimizer state to ``torch.optim.Adam.step()``."""
    inter, obs, paired, mem = batches()
    a, b = make_agent(variant), make_agent(variant)
    for opt in b.optimizers.values():
        opt.defaults["fused"] = False  # b: always the regular (still fused) optimizer step
    for _ in range(3):
        assert a.update(inter, obs, paired, mem) == b.update(inter, obs, paired, mem)
    pa, pb = params(a), params(b)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    for name in a.optimizers:
        sa, sb = a.optimizers[name].state_dict()["state"], b.optimizers[name].state_dict()["state"]
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])
    assert all(p.grad is None for net in a.networks.values() for p in net.parameters())


def test_summed_mode_differs_for_rlv_and_sums_scaled_gradients():
    inter, obs, paired, _ = batches()
    a = make_agent("rlv", rlv={"enabled": True, "paired": True, "per_loss_optimizers": True})
    b = make_agent("rlv", rlv={"enabled": True, "paired": True, "per_loss_optimizers": False})
    a.update(inter, obs, paired)
    b.update(inter, obs, paired)
    pa, pb = params(a), params(b)
    assert not torch.allclose(pa["encoder.convs.0.weight"], pb["encoder.convs.0.weight"])
    assert torch.allclose(pa["actor.net.0.weight"], pb["actor.net.0.weight"])  # actor has one loss either way


# ------------------------------------------------------------------------- determinism and checkpoints
@pytest.mark.parametrize("variant", ["sac", "rlmu"])
def test_identical_seeds_give_identical_parameters(variant):
    results = []
    for _ in range(2):
        agent = make_agent(variant, seed=3)
        for step in range(3):
            inter, obs, paired, mem = batches(step)
            agent.update(inter, obs, paired, mem)
        results.append(params(agent))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    other = make_agent(variant, seed=4)
    assert not torch.equal(params(other)["encoder.convs.0.weight"], results[0]["encoder.convs.0.weight"])


def test_state_dict_round_trip_is_exact_and_weights_only():
    agent = make_agent("rlmu", seed=1)
    agent.pretrain_mem_step(batches(9)[3])
    for step in range(2):
        inter, obs, _, mem = batches(step)
        agent.update(inter, obs, mem_batch=mem)
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    clone = make_agent("rlmu", seed=99)
    clone.load_state_dict(state)
    assert clone.update_step == 2 and clone.mem_pretrain_step == 1
    for step in range(2, 4):  # the continuation (incl. augmentation and policy noise) is identical
        inter, obs, _, mem = batches(step)
        assert agent.update(inter, obs, mem_batch=mem) == clone.update(inter, obs, mem_batch=mem)
    pa, pc = params(agent), params(clone)
    assert all(torch.equal(pa[k], pc[k]) for k in pa)
    assert torch.equal(agent.log_alpha, clone.log_alpha)
    with pytest.raises(ValueError, match="another config"):
        make_agent("sac").load_state_dict(state)


def test_divergence_raised_before_any_step():
    agent = make_agent("rlv")
    inter, obs, paired, _ = batches()
    agent.update(inter, obs, paired)
    before = params(agent)
    bad = dict(inter, reward=torch.full_like(inter["reward"], float("nan")))
    with pytest.raises(DivergenceError) as info:
        agent.update(bad, obs, paired)
    assert info.value.loss_name == "loss_critic" and info.value.update_step == 1
    assert np.isnan(info.value.value)
    after = params(agent)
    assert all(torch.equal(before[k], after[k]) for k in before) and agent.update_step == 1


# ------------------------------------------------------------------------------------------------ act
def test_act_single_and_batch():
    agent = make_agent("sac")
    single = agent.act(np.zeros(OBS, np.uint8), deterministic=True)
    batch = agent.act(np.zeros((4, *OBS), np.uint8), deterministic=False)
    assert single.shape == (A,) and batch.shape == (4, A) and single.dtype == np.float32
    assert np.abs(batch).max() < 1
    assert np.array_equal(single, agent.act(np.zeros(OBS, np.uint8), deterministic=True))
    with pytest.raises(ValueError, match="obs_shape"):
        agent.act(np.zeros((3, 8, 8), np.uint8), deterministic=True)


def test_state_observations_rlv():
    # Acrobot-like: identity encoder, so the encoder-only losses (generator, paired) have nothing to train.
    agent = make_agent("rlv", obs_shape=(6,))
    g = torch.Generator().manual_seed(0)
    inter = {
        "obs": torch.randn(6, 6, generator=g),
        "next_obs": torch.randn(6, 6, generator=g),
        "action": torch.rand(6, A, generator=g),
        "reward": -torch.ones(6),
        "terminal": torch.zeros(6),
    }
    obs = {
        "obs": torch.randn(5, 6, generator=g),
        "next_obs": torch.randn(5, 6, generator=g),
        "reward": torch.zeros(5),
        "terminal": torch.zeros(5),
    }
    out = agent.update(inter, obs)
    assert set(out) == {
        "loss_critic",
        "loss_actor",
        "loss_alpha",
        "loss_inverse",
        "loss_discriminator",
        "alpha",
    }
    assert agent.act(np.zeros(6, np.float32), deterministic=True).shape == (A,)


@pytest.mark.parametrize("per_loss", [True, False])
def test_optimizers_receive_the_scaled_gradients_of_their_losses(per_loss):
    inter, obs, paired, _ = batches()
    agent = make_agent("rlv", rlv={"enabled": True, "paired": True, "per_loss_optimizers": per_loss})
    rng_state = agent.rng.get_state()
    losses = agent.compute_losses(inter, obs, paired)
    enc = list(agent.encoder.parameters())
    expected = {}
    for name in ("loss_critic", "loss_inverse", "loss_generator", "loss_paired"):
        grads = torch.autograd.grad(agent.loss_scales[name] * losses[name], enc, retain_graph=True)
        expected[name] = grads
    agent.rng.set_state(rng_state)  # the update redraws the same augmentation and policy noise
    seen = {}
    for key, opt in agent.optimizers.items():

        def spy(opt=opt, key=key, step=opt.step):
            seen[key] = [
                p.grad.clone() if p.grad is not None else None for p in opt.param_groups[0]["params"]
            ]
            return step()

        opt.step = spy
    agent.update(inter, obs, paired)
    if per_loss:
        for name, grads in expected.items():  # the encoder comes first in each of these optimizers
            assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(seen[name], grads, strict=False))
    else:
        total = [sum(g[i] for g in expected.values()) for i in range(len(enc))]
        # one Adam for every parameter; the encoder's come first
        assert all(
            torch.allclose(a, b, rtol=1e-5, atol=1e-9) for a, b in zip(seen["joint"], total, strict=False)
        )


# ------------------------------------------------------------------------------------- learning sanity
def test_sac_learns_a_one_step_bandit_and_inverse_model_learns_dynamics():
    """State observations, every transition terminal, reward -(a - 0.5)^2: the deterministic policy must
    move to ~0.5. Observation transitions follow s' = s + 0.5 a, so the inverse model can recover a."""
    torch.manual_seed(0)
    cfg = make_cfg(
        sac={"hidden": [32, 32], "lr": 3e-3},
        rlv={"enabled": True, "inverse_hidden": [32], "discriminator_mode": "off"},
    )
    agent = Agent(cfg, (2,), 1)
    g = torch.Generator().manual_seed(0)

    def transitions(n, action):
        s = torch.rand(n, 2, generator=g) * 2 - 1
        nxt = s + 0.5 * action
        return s, nxt

    first_inverse = None
    for _ in range(300):
        action = torch.rand(32, 1, generator=g) * 2 - 1
        s, nxt = transitions(32, action)
        inter = {
            "obs": s,
            "next_obs": nxt,
            "action": action,
            "reward": -((action - 0.5) ** 2).squeeze(-1),
            "terminal": torch.ones(32),
        }
        o_action = torch.rand(32, 1, generator=g) * 2 - 1
        o_s, o_next = transitions(32, o_action)
        obs = {
            "obs": o_s,
            "next_obs": o_next,
            "reward": -((o_action - 0.5) ** 2).squeeze(-1),
            "terminal": torch.ones(32),
        }
        out = agent.update(inter, obs)
        first_inverse = first_inverse if first_inverse is not None else out["loss_inverse"]
    probe = np.random.default_rng(0).uniform(-1, 1, (16, 2)).astype(np.float32)
    assert np.abs(agent.act(probe, deterministic=True) - 0.5).max() < 0.15
    assert out["loss_inverse"] < 0.1 * first_inverse
