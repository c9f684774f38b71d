"""The agent: variants as configs, gradient routing, optimizer modes, checkpoints, acting, a learning check.

Pack invariance and divergence inside a pack: ``test_agent_pack.py`` (it uses the helpers here)."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError

import rlmu
from rlmu.agent import Agent, AgentConfig
from rlmu.agent.agent import LOSS_GROUPS, UpdateResult

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
    "rlv_nopair": {"rlv": {"enabled": True}},
    "rlmu": {"rlv": {"enabled": True}, "mem": {"enabled": True}},
}
# Every parameter group a loss could reach (the target critic has no gradients).
GROUPS = ("encoder", "actor", "critic", "inverse_model", "discriminator", "motion_extractor", "log_alpha")


def make_cfg(variant="sac", **over) -> AgentConfig:
    cfg = {k: dict(v) for k, v in SMALL.items()}
    for section, values in [*VARIANTS[variant].items(), *over.items()]:
        cfg[section].update(values)
    return AgentConfig.model_validate(cfg)


def make_agent(variant="sac", seeds=(0,), obs_shape=OBS, task=None, **over) -> Agent:
    return Agent(make_cfg(variant, **over), obs_shape, A, "cpu", seeds, task=task)


def member_batches(seed, step, obs_shape=OBS, n=6, m=5, pairs=3, mem_n=2, subseq=3):
    """One member's interaction, observation, paired and MEM batches, fixed by (seed, step): a member's data
    is the same whichever pack it is in."""
    g = torch.Generator().manual_seed(1000 * seed + step)

    def o(*shape):
        if len(obs_shape) == 3:
            return torch.randint(0, 256, (*shape, *obs_shape), dtype=torch.uint8, generator=g)
        return torch.randn(*shape, *obs_shape, generator=g)

    inter = {
        "obs": o(n),
        "next_obs": o(n),
        "action": torch.rand(n, A, generator=g) * 2 - 1,
        "reward": torch.rand(n, generator=g),
        "terminal": (torch.rand(n, generator=g) < 0.3).float(),
    }
    obs = {
        "obs": o(m),
        "next_obs": o(m),
        "reward": torch.rand(m, generator=g),
        "terminal": torch.tensor([0.0] * (m - 1) + [1.0]),
    }
    paired = {"robot": o(pairs), "human": o(pairs)}
    mem = {"frames": o(mem_n, subseq), "label": torch.randint(0, 3, (mem_n,), generator=g)}
    return inter, obs, paired, mem


def batches(seeds=(0,), step=0, **kw):
    """The pack's batches: each member's own (``member_batches``), stacked on a leading pack axis."""
    per = [member_batches(s, step, **kw) for s in seeds]
    return tuple({key: torch.stack([p[i][key] for p in per]) for key in per[0][i]} for i in range(4))


def params(agent):
    return {
        f"{n}.{k}": v.detach().clone()
        for n, net in agent.networks.items()
        for k, v in net.state_dict().items()
    } | {"log_alpha": agent.log_alpha.detach().clone()}


def member_params(agent, k):
    """Member k's parameters (target critic included) under names that do not depend on the pack: entry i
    of a ``members`` list belongs to member i % K (the critics' lists hold the Q1s, then the Q2s) and is
    named by i // K; a tensor without one is stacked, member k's row(s) k, K + k, ..."""
    n_members = agent.n_members
    out = {"log_alpha": agent.log_alpha.detach()[k].clone()}
    for n, net in agent.networks.items():
        for name, p in net.named_parameters():
            parts = name.split(".")
            at = [j for j, part in enumerate(parts[:-1]) if part == "members"]
            if at:
                i = int(parts[at[-1] + 1])
                if i % n_members == k:
                    parts[at[-1] + 1] = str(i // n_members)
                    out[f"{n}.{'.'.join(parts)}"] = p.detach().clone()
            else:
                out[f"{n}.{name}"] = p.detach()[k::n_members].clone()
    return out


def grads_by_group(agent, loss):
    """Parameter group -> whether ``loss`` (summed over members) has a non-zero gradient there."""
    reached = set()
    for group in GROUPS:
        ps = agent.group_params(group)
        if not ps:
            continue
        gs = torch.autograd.grad(loss.sum(), ps, retain_graph=True, allow_unused=True)
        if any(g is not None and g.abs().sum() > 0 for g in gs):
            reached.add(group)
    return reached


def encoder_grads(agent, loss):
    return torch.autograd.grad(
        loss.sum(), agent.group_params("encoder"), retain_graph=True, allow_unused=True
    )


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


def test_discriminator_mode_off_survives_yaml():
    """YAML reads a bare ``off`` as false: ``agent.rlv.discriminator_mode=off`` on the command line and
    ``discriminator_mode: off`` in a study file both mean the mode ``off``."""
    from rlmu.train.config import parse_overrides, resolve_config

    over = parse_overrides(["task=acrobot", "variant=sac", "agent.rlv.discriminator_mode=off"])
    assert resolve_config(over).agent.rlv.discriminator_mode == "off"
    assert (
        AgentConfig.model_validate(yaml.safe_load("rlv: {discriminator_mode: off}")).rlv.discriminator_mode
        == "off"
    )
    with pytest.raises(ValidationError, match=r"rlv\.discriminator_mode"):
        AgentConfig.model_validate({"rlv": {"discriminator_mode": True}})


def test_methods_defaults():
    cfg = AgentConfig()
    assert (cfg.sac.gamma, cfg.sac.tau, cfg.sac.lr, cfg.sac.batch_size) == (0.99, 5e-3, 3e-4, 256)
    assert (cfg.sac.log_std_min, cfg.sac.log_std_max, cfg.sac.init_log_alpha) == (-20, 2, 0.0)
    assert cfg.sac.hidden == (512, 256, 256) and cfg.encoder.channels == (16, 16, 32)
    assert (cfg.rlv.generator_scale, cfg.rlv.discriminator_scale) == (1e-3, 1e-8)
    # the paired scale depends on the task [released]: push 1e-6, drawer 1e-8; others take push's
    assert cfg.rlv.paired_scale is None
    assert [cfg.rlv.paired_scale_for(t) for t in ("push", "drawer", "acrobot", None)] == [
        1e-6,
        1e-8,
        1e-6,
        1e-6,
    ]
    assert (cfg.mem.n_classes, cfg.mem.subseq_len, cfg.mem.lstm_layers, cfg.mem.pretrain_steps) == (
        8,
        8,
        3,
        5000,
    )
    agent = Agent(cfg, (6,), 3, seeds=(0, 1))
    assert agent.target_entropy == -3.0 and agent.log_alpha.shape == (2, 1)


def test_pack_members_are_their_seeds_and_bad_seeds_are_rejected():
    a, b = make_agent("rlmu", seeds=(5, 7)), make_agent("rlmu", seeds=(7,))
    pa, pb = member_params(a, 1), member_params(b, 0)
    assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not torch.equal(
        member_params(a, 0)["actor.net.layers.0.members.0.weight"], pa["actor.net.layers.0.members.0.weight"]
    )
    # the target critic starts as the critic, and the global generator is left as it was
    assert torch.equal(
        pa["critic_target.q.layers.0.members.0.weight"], pa["critic.q.layers.0.members.0.weight"]
    )
    state = torch.random.get_rng_state()
    make_agent(seeds=(1, 2))
    assert torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError, match="distinct"):
        make_agent(seeds=(1, 1))
    with pytest.raises(ValueError, match="at least one"):
        make_agent(seeds=())
    with pytest.raises(ValueError, match="action_dim"):
        Agent(make_cfg(), OBS, 0)


# ---------------------------------------------------------------------------------- variants and keys
@pytest.mark.parametrize(
    ("variant", "losses"),
    [
        ("sac", {"loss_critic", "loss_actor", "loss_alpha"}),
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
        ),
    ],
)
def test_update_returns_every_active_loss_per_member(variant, losses):
    agent = make_agent(variant, seeds=(0, 1))
    before = params(agent)
    out = agent.update(*batches((0, 1)))
    assert isinstance(out, UpdateResult) and out.diverged == []
    assert set(out.values) == losses | {"alpha"}
    assert all(v.shape == (2,) and np.isfinite(v).all() for v in out.values.values())
    assert not np.array_equal(out.values["loss_critic"][0], out.values["loss_critic"][1])
    # per-loss mode: one Adam per active loss (and MEM's pre-training one)
    extra = {"mem_pretrain"} if variant == "rlmu" else set()
    assert set(agent.optimizers) == losses | extra and agent.update_step == 1
    after = params(agent)
    assert not torch.equal(
        before["encoder.members.0.convs.0.weight"], after["encoder.members.0.convs.0.weight"]
    )
    assert not torch.equal(
        before["actor.net.layers.0.members.0.weight"], after["actor.net.layers.0.members.0.weight"]
    )
    # Polyak: the target moved by tau towards the (pre-update) critic, not onto it
    k, tau = "q.layers.0.members.0.weight", agent.cfg.sac.tau
    expected = before[f"critic_target.{k}"].lerp(after[f"critic.{k}"], tau)
    assert torch.allclose(after[f"critic_target.{k}"], expected, atol=1e-7)
    assert not torch.equal(after[f"critic_target.{k}"], after[f"critic.{k}"])


def test_missing_and_malformed_batches_are_reported():
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
        make_agent("rlv").update(inter, obs, dict(paired, human=paired["human"][..., :8]))
    with pytest.raises(KeyError, match="next_obs"):
        make_agent("sac").update({k: v for k, v in inter.items() if k != "next_obs"})
    with pytest.raises(ValueError, match="first axis must be the pack's 2 members"):
        make_agent("sac", seeds=(0, 1)).update(inter)


def test_mem_period():
    agent = make_agent("rlmu", mem={"enabled": True, "period": 2})
    inter, obs, _, mem = batches()
    assert "loss_mem" in agent.update(inter, obs, mem_batch=mem).values
    assert not agent.mem_due() and "loss_mem" not in agent.update(inter, obs).values  # no MEM batch needed
    assert agent.mem_due()


# ------------------------------------------------------------------------------------ gradient routing
@pytest.mark.parametrize(
    ("variant", "over"),
    [
        ("sac", {}),
        ("rlv", {"rlv": {"discriminator_mode": "released"}}),
        ("rlmu", {"rlv": {"discriminator_mode": "released"}}),
        ("rlv_nopair", {"rlv": {"discriminator_mode": "off"}, "sac": {"actor_updates_encoder": True}}),
    ],
)
def test_each_loss_graph_reaches_exactly_its_groups(variant, over):
    """With the discriminator ``released`` (or off), every loss's graph reaches exactly the parameter groups
    it trains (``LOSS_GROUPS``; the actor's also the encoder when ``actor_updates_encoder``): the target
    and the observation actions carry no gradient, the actor loss holds the critic constant, the
    temperature loss the log-probabilities."""
    agent = make_agent(variant, seeds=(0, 1), **over)
    losses = agent.compute_losses(*batches((0, 1)))
    assert set(losses) == set(agent.loss_groups)
    for name, loss in losses.items():
        assert loss.shape == (2,)
        expected = set(LOSS_GROUPS[name])
        if name == "loss_actor" and agent.cfg.sac.actor_updates_encoder:
            expected.add("encoder")
        assert grads_by_group(agent, loss) == expected == set(agent.loss_groups[name]), name
    assert not any(p.requires_grad for p in agent.critic_target.parameters())


def test_actor_loss_never_reaches_the_critic_nor_by_default_the_encoder():
    agent = make_agent("rlv", seeds=(0, 1))
    losses = agent.compute_losses(*batches((0, 1)))
    assert grads_by_group(agent, losses["loss_actor"]) == {"actor"}
    assert agent.loss_groups["loss_actor"] == ("actor",)
    coupled = make_agent("sac", sac={"actor_updates_encoder": True})
    losses = coupled.compute_losses(*batches())
    assert grads_by_group(coupled, losses["loss_actor"]) == {"encoder", "actor"}
    assert coupled.loss_groups["loss_actor"] == ("encoder", "actor")


def test_adversarial_mode_trains_encoder_released_mode_does_not():
    inter, obs, _, _ = batches()
    adv = make_agent("rlv_nopair", rlv={"discriminator_mode": "adversarial"})
    losses = adv.compute_losses(inter, obs)
    grads = encoder_grads(adv, losses["loss_generator"])
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    # both domain losses read the same live features; the generator step moves only the encoder, the
    # discriminator step only the discriminator
    assert grads_by_group(adv, losses["loss_generator"]) == {"encoder", "discriminator"}
    assert adv.loss_groups["loss_generator"] == ("encoder",)
    assert adv.loss_groups["loss_discriminator"] == ("discriminator",)
    assert "loss_generator" in adv.optimizers

    rel = make_agent("rlv_nopair", rlv={"discriminator_mode": "released"})
    losses = rel.compute_losses(inter, obs)
    assert "loss_generator" not in losses and "loss_generator" not in rel.optimizers
    assert all(g is None for g in encoder_grads(rel, losses["loss_discriminator"]))

    off = make_agent("rlv_nopair", rlv={"discriminator_mode": "off"})
    assert off.discriminator is None and "loss_discriminator" not in off.compute_losses(inter, obs)


def test_reversal_generator_is_minus_discriminator_per_member():
    agent = make_agent("rlv_nopair", seeds=(0, 1), rlv={"generator_loss": "reversal"})
    losses = agent.compute_losses(*batches((0, 1)))
    assert torch.equal(losses["loss_generator"], -losses["loss_discriminator"])


def test_mem_and_paired_losses_reach_the_encoder():
    inter, obs, paired, mem = batches()
    agent = make_agent("rlmu")
    losses = agent.compute_losses(inter, obs, mem_batch=mem)
    assert grads_by_group(agent, losses["loss_mem"]) == {"encoder", "motion_extractor"}
    assert all(g is not None and g.abs().sum() > 0 for g in encoder_grads(agent, losses["loss_mem"]))
    rlv = make_agent("rlv")
    losses = rlv.compute_losses(inter, obs, paired)
    assert grads_by_group(rlv, losses["loss_paired"]) == {"encoder"}


def test_observation_actions_are_detached_inverse_predictions():
    inter, obs, _, _ = batches((0, 1))
    agent = make_agent("rlv_nopair", seeds=(0, 1), encoder={"augment": False})
    seen = []
    original = agent.critic.forward
    agent.critic.forward = lambda h, a, **kw: (seen.append(a), original(h, a, **kw))[1]
    losses = agent.compute_losses(inter, obs)
    n = inter["obs"].shape[1]
    critic_action = seen[0]
    assert critic_action.shape == (2, n + obs["obs"].shape[1], A)  # all interaction + observation rows
    assert torch.equal(critic_action[:, :n], inter["action"])
    with torch.no_grad():
        expected = agent.inverse_model(agent.encoder(obs["obs"]), agent.encoder(obs["next_obs"]))
    assert torch.allclose(critic_action[:, n:], expected, atol=1e-6)
    assert "inverse_model" not in grads_by_group(agent, losses["loss_critic"])


def test_pretrain_mem_step_moves_encoder_and_mem_only():
    agent = make_agent("rlmu", seeds=(0, 1))
    before = params(agent)
    out = agent.pretrain_mem_step(batches((0, 1))[3])
    after = params(agent)
    assert set(out.values) == {"loss_mem"} and out.values["loss_mem"].shape == (2,) and out.diverged == []
    assert agent.mem_pretrain_step == 1 and agent.update_step == 0
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"encoder", "motion_extractor"}
    with pytest.raises(ValueError, match="mem.enabled"):
        make_agent("sac").pretrain_mem_step(batches()[3])


# ------------------------------------------------------------------------------------ optimizer modes
def _param_ids(opt):
    return [id(p) for group in opt.param_groups for p in group["params"]]


def test_optimizer_layout_per_loss_and_summed():
    per = make_agent("rlmu")
    ids = {g: [id(p) for p in per.group_params(g)] for g in GROUPS}
    # per-loss mode ([released]): one Adam per loss over exactly its groups, so the encoder, trained by the
    # critic, inverse, generator and MEM losses, has four Adam states (five with MEM pre-training)
    assert set(per.optimizers) == set(per.loss_groups) | {"mem_pretrain"}
    for name, groups in per.loss_groups.items():
        assert _param_ids(per.optimizers[name]) == [i for g in groups for i in ids[g]], name
        lr = per.optimizers[name].param_groups[0]["lr"]
        assert lr == (per.cfg.mem.lr if name == "loss_mem" else per.cfg.sac.lr)
    holders = [n for n, opt in per.optimizers.items() if ids["encoder"][0] in _param_ids(opt)]
    assert sorted(holders) == ["loss_critic", "loss_generator", "loss_inverse", "loss_mem", "mem_pretrain"]
    assert _param_ids(per.optimizers["mem_pretrain"]) == ids["encoder"] + ids["motion_extractor"]

    summed = make_agent("rlmu", rlv={"per_loss_optimizers": False}, mem={"enabled": True, "lr": 1e-3})
    ids = {g: [id(p) for p in summed.group_params(g)] for g in GROUPS}
    groups = [g for g in GROUPS if ids[g]]
    assert set(summed.optimizers) == {f"group_{g}" for g in groups} | {"mem_pretrain"}
    for g in groups:  # one Adam per parameter group: every parameter in exactly one of them
        assert _param_ids(summed.optimizers[f"group_{g}"]) == ids[g]
        assert summed.optimizers[f"group_{g}"].param_groups[0]["lr"] == (
            1e-3 if g == "motion_extractor" else summed.cfg.sac.lr
        )


def _spy_on_steps(agent):
    """Record, for every optimizer step, the gradients its parameters hold (None where none)."""
    seen = {}
    for key, opt in agent.optimizers.items():

        def spy(opt=opt, key=key, step=opt.step):
            seen[key] = {
                p: p.grad.clone() if p.grad is not None else None
                for group in opt.param_groups
                for p in group["params"]
            }
            return step()

        opt.step = spy
    return seen


@pytest.mark.parametrize("per_loss", [True, False])
def test_optimizers_receive_the_scaled_gradients_of_their_losses(per_loss):
    """Each loss's gradient, times its scale, reaches the optimizer(s) of exactly its own groups; in summed
    mode each group's Adam gets the sum over the losses that train it."""
    seeds = (0, 1)
    data = batches(seeds)
    agent = make_agent("rlv", seeds=seeds, rlv={"per_loss_optimizers": per_loss})
    ref = make_agent("rlv", seeds=seeds, rlv={"per_loss_optimizers": per_loss})  # same seeds: same draws
    losses = ref.compute_losses(*data)
    expected = {}  # loss -> {parameter index in its groups' order: gradient}
    for name, loss in losses.items():
        ps = [p for g in agent.loss_groups[name] for p in ref.group_params(g)]
        gs = torch.autograd.grad(ref.loss_scales[name] * loss.sum(), ps, retain_graph=True)
        expected[name] = dict(zip(ps, gs, strict=True))
    twin = dict(zip(params_list(ref), params_list(agent), strict=True))  # ref's parameter -> agent's
    seen = _spy_on_steps(agent)
    agent.update(*data)
    if per_loss:
        assert set(seen) == set(losses)
        for name, grads in expected.items():
            got = seen[name]
            assert set(got) == {twin[p] for p in grads}, name
            for p, g in grads.items():
                assert torch.allclose(got[twin[p]], g, rtol=1e-6, atol=1e-12), name
    else:
        total = {}
        for grads in expected.values():
            for p, g in grads.items():
                total[twin[p]] = total[twin[p]] + g if twin[p] in total else g
        got = {p: g for s in seen.values() for p, g in s.items()}
        assert set(got) == set(total) and all(g is not None for g in got.values())
        assert all(torch.allclose(got[p], total[p], rtol=1e-5, atol=1e-12) for p in total)
    assert all(p.grad is None for p in params_list(agent))  # no gradient left behind


def params_list(agent):
    return [p for g in GROUPS for p in agent.group_params(g)]


def test_summed_mode_equals_per_loss_mode_when_no_parameter_is_shared_by_two_losses():
    # SAC: only the critic loss reaches the encoder, and Adam is elementwise, so the two modes agree.
    data = batches((0, 1))
    a = make_agent("sac", seeds=(0, 1), rlv={"per_loss_optimizers": True})
    b = make_agent("sac", seeds=(0, 1), rlv={"per_loss_optimizers": False})
    assert set(a.optimizers) == {"loss_critic", "loss_actor", "loss_alpha"}
    assert set(b.optimizers) == {"group_encoder", "group_critic", "group_actor", "group_log_alpha"}
    for _ in range(2):
        va, vb = a.update(*data).values, b.update(*data).values
        assert va.keys() == vb.keys() and all(np.array_equal(va[k], vb[k]) for k in va)
    pa, pb = params(a), params(b)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_summed_mode_differs_for_rlv():
    data = batches()
    a = make_agent("rlv", rlv={"per_loss_optimizers": True})
    b = make_agent("rlv", rlv={"per_loss_optimizers": False})
    a.update(*data)
    b.update(*data)
    pa, pb = params(a), params(b)
    enc = "encoder.members.0.convs.0.weight"
    assert not torch.allclose(pa[enc], pb[enc])  # four losses' gradients: four Adam states or one sum
    assert torch.equal(
        pa["actor.net.layers.0.members.0.weight"], pb["actor.net.layers.0.members.0.weight"]
    )  # one loss either way


# ---------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(("variant", "obs_shape"), [("rlmu", OBS), ("rlv_nopair", (6,))])
def test_state_dict_round_trip_resumes_bit_identically(variant, obs_shape):
    """N updates straight on against save, load into a fresh agent, N updates: the same losses, parameters,
    optimizer states, temperatures and random streams (augmentation, policy noise); weights_only."""
    seeds = (1, 3)
    agent = make_agent(variant, seeds=seeds, obs_shape=obs_shape)
    if agent.motion_extractor is not None:
        agent.pretrain_mem_step(batches(seeds, 9, obs_shape=obs_shape)[3])
    for step in range(2):
        agent.update(*batches(seeds, step, obs_shape=obs_shape))
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    clone = make_agent(variant, seeds=seeds, obs_shape=obs_shape)
    clone.update(*batches(seeds, 7, obs_shape=obs_shape))  # a different history, overwritten by the load
    clone.load_state_dict(state)
    assert clone.update_step == 2 and clone.mem_pretrain_step == agent.mem_pretrain_step
    for step in range(2, 5):
        data = batches(seeds, step, obs_shape=obs_shape)
        va, vc = agent.update(*data).values, clone.update(*data).values
        assert va.keys() == vc.keys() and all(np.array_equal(va[k], vc[k]) for k in va), step
    pa, pc = params(agent), params(clone)
    assert all(torch.equal(pa[k], pc[k]) for k in pa)
    for name, opt in agent.optimizers.items():
        sa, sc = opt.state_dict()["state"], clone.optimizers[name].state_dict()["state"]
        assert sa.keys() == sc.keys() and all(torch.equal(sa[i][k], sc[i][k]) for i in sa for k in sa[i])
    obs = batches(seeds, 8, obs_shape=obs_shape)[0]["obs"][:, 0].numpy()
    assert np.array_equal(agent.act(obs, deterministic=False), clone.act(obs, deterministic=False))


def test_load_state_dict_refuses_another_pack_or_config():
    agent = make_agent("rlv_nopair", seeds=(1, 3))
    agent.update(*batches((1, 3)))
    state = agent.state_dict()
    for seeds in [(1, 4), (3, 1), (1, 3, 5), (1,)]:
        other = make_agent("rlv_nopair", seeds=seeds)
        before = params(other)
        with pytest.raises(ValueError, match=re.escape("pack [1, 3]")):
            other.load_state_dict(state)
        assert all(torch.equal(v, params(other)[k]) for k, v in before.items())  # nothing half-loaded
    with pytest.raises(ValueError, match="another config"):
        make_agent("sac", seeds=(1, 3)).load_state_dict(state)
    with pytest.raises(KeyError, match="optimizers"):
        make_agent("rlv_nopair", seeds=(1, 3)).load_state_dict(
            {k: v for k, v in state.items() if k != "optimizers"}
        )


# ------------------------------------------------------------------------------------------------ act
def test_act_one_action_per_member():
    agent = make_agent("sac", seeds=(0, 1, 2))
    obs = batches((0, 1, 2))[0]["obs"][:, 0].numpy()
    mode = agent.act(obs, deterministic=True)
    assert mode.shape == (3, A) and mode.dtype == np.float32 and np.abs(mode).max() < 1
    assert np.array_equal(mode, agent.act(obs, deterministic=True))  # no randomness, no augmentation
    first, second = agent.act(obs, deterministic=False), agent.act(obs, deterministic=False)
    assert not np.array_equal(first, second) and not np.array_equal(first, mode)  # each member's own noise
    with pytest.raises(ValueError, match=re.escape("expected (3, 3, 16, 16)")):
        agent.act(obs[:2], deterministic=True)
    with pytest.raises(ValueError, match="uint8"):
        agent.act(obs.astype(np.float32), deterministic=True)


def test_state_observations_rlv():
    """Acrobot-like state observations: the learned state encoder is the heads' shared f_enc, so every RLV
    loss is active (before the state encoder, the generator and paired losses had nothing to train). With
    the identity encoder (``encoder.state = false``) only the configurations without them are accepted."""
    agent = make_agent("rlv", seeds=(0, 1), obs_shape=(6,))
    out = agent.update(*batches((0, 1), obs_shape=(6,)))
    assert set(out.values) == {
        "loss_critic",
        "loss_actor",
        "loss_alpha",
        "loss_inverse",
        "loss_discriminator",
        "loss_generator",
        "loss_paired",
        "alpha",
    }
    assert agent.encoder.repr_dim == 6 + agent.cfg.encoder.state_features  # [s, f(s)]
    assert agent.act(np.zeros((2, 6), np.float32), deterministic=True).shape == (2, A)
    identity = make_agent(
        "rlv_nopair",
        seeds=(0, 1),
        obs_shape=(6,),
        encoder={"state": False},
        rlv={"discriminator_mode": "off"},
    )
    out = identity.update(*batches((0, 1), obs_shape=(6,)))
    assert set(out.values) == {"loss_critic", "loss_actor", "loss_alpha", "loss_inverse", "alpha"}
    assert identity.encoder.repr_dim == 6 and identity.group_params("encoder") == []


# ---------------------------------------------------------------------------------- no private torch
def test_the_package_uses_no_private_torch_api_nor_custom_autograd_nodes():
    """``grep -rnE "torch\\._|torch\\.ops|autograd\\.Function" rlmu/`` prints nothing."""
    pattern = re.compile(r"torch\._|torch\.ops|autograd\.Function")
    root = Path(rlmu.__file__).parent
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert any(p.name == "agent.py" for p in files)
    hits = [
        f"{p.relative_to(root)}:{i}: {line.strip()}"
        for p in files
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


# ------------------------------------------------------------------------------------- learning sanity
@pytest.mark.parametrize(("encoder", "inverse_drop"), [({"state": False}, 0.1), ({}, 0.5)])
def test_sac_learns_a_one_step_bandit_and_inverse_model_learns_dynamics(encoder, inverse_drop):
    """State observations, every transition terminal, reward -(a - 0.5)^2: each member's deterministic
    policy must move to ~0.5. Observation transitions follow s' = s + 0.5 a, so the inverse model can
    recover a: with the identity encoder its loss falls to a tenth in 300 updates; through the learned state
    encoder (which the critic shapes too) to half."""
    cfg = make_cfg(
        "rlv_nopair",
        sac={"hidden": [32, 32], "lr": 3e-3},
        rlv={"inverse_hidden": [32], "discriminator_mode": "off"},
        encoder=encoder,
    )
    k = 2
    agent = Agent(cfg, (2,), 1, seeds=(0, 1))
    g = torch.Generator().manual_seed(0)

    def transitions(action):
        s = torch.rand(k, 32, 2, generator=g) * 2 - 1
        return s, s + 0.5 * action

    first_inverse = None
    for _ in range(300):
        action = torch.rand(k, 32, 1, generator=g) * 2 - 1
        s, nxt = transitions(action)
        inter = {
            "obs": s,
            "next_obs": nxt,
            "action": action,
            "reward": -((action - 0.5) ** 2).squeeze(-1),
            "terminal": torch.ones(k, 32),
        }
        o_action = torch.rand(k, 32, 1, generator=g) * 2 - 1
        o_s, o_next = transitions(o_action)
        obs = {
            "obs": o_s,
            "next_obs": o_next,
            "reward": -((o_action - 0.5) ** 2).squeeze(-1),
            "terminal": torch.ones(k, 32),
        }
        out = agent.update(inter, obs).values
        first_inverse = first_inverse if first_inverse is not None else out["loss_inverse"]
    probe = np.random.default_rng(0).uniform(-1, 1, (k, 2)).astype(np.float32)
    assert np.abs(agent.act(probe, deterministic=True) - 0.5).max() < 0.15
    assert (out["loss_inverse"] < inverse_drop * first_inverse).all()
