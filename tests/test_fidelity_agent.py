"""Fidelity choices of the agent: how random shifts are drawn, the learned state encoder and the losses it
gives state tasks, the task-dependent paired scale, summed mode's own scales and the first-update record of
encoder gradients, and the optional target encoder."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from test_agent import OBS, batches, grads_by_group, make_agent, member_params
from test_agent_pack import SIZES
from test_resume import write_acrobot_videos

from rlmu.agent.agent import LOSS_GROUPS
from rlmu.errors import UserError
from rlmu.train.cli import load_pack
from rlmu.train.record import FIRST_UPDATE_FILE, read_first_update
from rlmu.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
STATE = (6,)
TINY_STATE = {"state_hidden": [16], "state_features": 8}


def encoder_inputs(agent):
    """Records every batch of frames the encoder is called on."""
    seen = []
    agent.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    return seen


def same_frame_batches(seeds=(0, 1), n=6, m=5):
    """Batches in which every s and s' is one fixed random image: what differs after augmentation is the
    shift alone."""
    inter, obs, paired, mem = batches(seeds)
    image = torch.randint(0, 256, OBS, dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    k = len(seeds)
    inter = dict(inter, obs=image.expand(k, n, *OBS).clone(), next_obs=image.expand(k, n, *OBS).clone())
    obs = dict(obs, obs=image.expand(k, m, *OBS).clone(), next_obs=image.expand(k, m, *OBS).clone())
    return inter, obs, paired, mem


# ------------------------------------------------------------------------------------------ 1. shifts
def test_per_transition_shift_is_shared_by_s_and_next_s_and_independent_across_the_batch():
    agent = make_agent("sac", seeds=(0, 1))
    assert agent.cfg.encoder.shift == "per_transition"
    seen = encoder_inputs(agent)
    agent.compute_losses(same_frame_batches()[0])
    s, s_next = seen[:2]
    assert torch.equal(s, s_next)  # one offset per transition: s' - s stays motion (here: none)
    assert not all(torch.equal(s[0, 0], s[0, i]) for i in range(1, s.shape[1]))  # but not one per batch


def test_per_frame_shift_moves_s_and_next_s_independently():
    agent = make_agent("sac", seeds=(0, 1), encoder={"shift": "per_frame"})
    seen = encoder_inputs(agent)
    agent.compute_losses(same_frame_batches()[0])
    s, s_next = seen[:2]
    assert not torch.equal(s, s_next)


def test_per_batch_shift_is_one_offset_for_every_frame_of_an_update():
    agent = make_agent("rlv_nopair", seeds=(0, 1), encoder={"shift": "per_batch"})
    seen = encoder_inputs(agent)
    inter, obs, _, _ = same_frame_batches()
    agent.compute_losses(inter, obs)
    frames = torch.cat([x for x in seen[:4]], 1)  # s_int, s_obs, s'_int, s'_obs
    for k in range(2):
        assert all(torch.equal(frames[k, 0], f) for f in frames[k])
    assert not torch.equal(frames[0, 0], frames[1, 0])  # each member draws its own


def test_each_shift_mode_draws_from_the_members_own_generators():
    """A member's shifted frames are the same alone and in a pack, in every mode."""
    for mode in ("per_transition", "per_frame", "per_batch"):
        pack, solo = (make_agent("sac", seeds=s, encoder={"shift": mode}) for s in ((4, 9), (9,)))
        seen_pack, seen_solo = encoder_inputs(pack), encoder_inputs(solo)
        pack.compute_losses(batches((4, 9))[0])
        solo.compute_losses(batches((9,))[0])
        assert all(torch.equal(p[1], q[0]) for p, q in zip(seen_pack, seen_solo, strict=True)), mode


# ---------------------------------------------------------------------------------- 2. state encoder
def test_state_encoder_is_shared_by_every_head_and_trained_by_its_losses():
    agent = make_agent("rlmu", seeds=(0, 1), obs_shape=STATE, encoder=TINY_STATE, rlv={"paired": True})
    assert agent.encoder.learned and agent.encoder.repr_dim == STATE[0] + 8  # [s, f(s)] by default
    losses = agent.compute_losses(*batches((0, 1), obs_shape=STATE))
    trains_encoder = {"loss_critic", "loss_inverse", "loss_generator", "loss_paired", "loss_mem"}
    assert {n for n in losses if "encoder" in agent.loss_groups[n]} == trains_encoder
    for name in trains_encoder:
        assert "encoder" in grads_by_group(agent, losses[name]), name
    assert grads_by_group(agent, losses["loss_actor"]) == {"actor"}  # the actor reads detached features
    assert set(agent.loss_groups["loss_generator"]) == set(LOSS_GROUPS["loss_generator"]) == {"encoder"}


def test_generator_loss_alone_changes_the_state_encoder():
    agent = make_agent("rlv_nopair", seeds=(0, 1), obs_shape=STATE, encoder=TINY_STATE)
    losses = agent.compute_losses(*batches((0, 1), obs_shape=STATE))
    before = [p.detach().clone() for p in agent.group_params("encoder")]
    others = {
        g: [p.detach().clone() for p in agent.group_params(g)] for g in ("actor", "critic", "discriminator")
    }
    agent._step({"loss_generator": losses["loss_generator"]})
    after = agent.group_params("encoder")
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    for g, ps in others.items():
        assert all(torch.equal(b, a) for b, a in zip(ps, agent.group_params(g), strict=True)), g


def test_state_encoder_pack_member_is_its_seed():
    """(Batches of 64: see ``test_agent_pack.SIZES``.)"""
    pack = make_agent("rlmu", seeds=(2, 5), obs_shape=STATE, encoder=TINY_STATE)
    solo = make_agent("rlmu", seeds=(5,), obs_shape=STATE, encoder=TINY_STATE)
    for step in range(3):
        p = pack.update(*batches((2, 5), step, obs_shape=STATE, **SIZES))
        s = solo.update(*batches((5,), step, obs_shape=STATE, **SIZES))
        assert all(p.values[k][1] == s.values[k][0] for k in s.values)
    pa, pb = member_params(pack, 1), member_params(solo, 0)
    assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def test_state_skip_puts_the_state_itself_beside_the_learned_features():
    """``encoder.state_skip`` (the default): every head reads [s, f(s)]. The first D features are the float
    state, exactly; the rest are the encoder of the same seed without the skip; its losses still train f."""
    dense = make_agent(
        "rlv_nopair", seeds=(0, 1), obs_shape=STATE, encoder={**TINY_STATE, "state_skip": True}
    )
    plain = make_agent(
        "rlv_nopair", seeds=(0, 1), obs_shape=STATE, encoder={**TINY_STATE, "state_skip": False}
    )
    assert dense.encoder.repr_dim == STATE[0] + 8
    for net in ("actor", "inverse_model", "discriminator"):
        first = dense.networks[net].modules()
        widths = [m.in_features for m in first if isinstance(m, torch.nn.Linear)]
        assert widths[0] in (STATE[0] + 8, 2 * (STATE[0] + 8)), net
    x = torch.randn(2, 4, *STATE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h, f = dense.encoder(x), plain.encoder(x)
    assert torch.equal(h[..., : STATE[0]], x)
    assert torch.equal(h[..., STATE[0] :], f)
    losses = dense.compute_losses(*batches((0, 1), obs_shape=STATE))
    for name in ("loss_critic", "loss_inverse", "loss_generator"):
        assert "encoder" in grads_by_group(dense, losses[name]), name
    out = dense.update(*batches((0, 1), obs_shape=STATE))
    assert all(math.isfinite(v) for v in out.values["loss_critic"])


@pytest.mark.parametrize(
    ("over", "loss"),
    [
        ({"rlv": {"enabled": True}}, "loss_generator"),
        ({"rlv": {"enabled": True, "discriminator_mode": "off", "paired": True}}, "loss_paired"),
        ({"rlv": {"enabled": True, "discriminator_mode": "released"}, "mem": {"enabled": True}}, "loss_mem"),
    ],
)
def test_a_loss_that_cannot_reach_the_policy_is_refused(over, loss):
    with pytest.raises(UserError, match=loss) as err:
        make_agent("sac", obs_shape=STATE, encoder={"state": False}, **over)
    assert "\n" not in str(err.value)
    make_agent("sac", obs_shape=OBS, encoder={"state": False}, **over)  # pixels always have their encoder


def test_trainer_refuses_a_dead_loss_before_loading_data(tmp_path):
    cfgs = load_pack(
        None,
        ["task=acrobot", "variant=rlmu", "data.observations=/nonexistent.npz", "agent.encoder.state=false"],
    )
    with pytest.raises(UserError, match="loss_generator"):
        Trainer(cfgs, [tmp_path / "seed_0"], tmp_path / "pack", progress=False, log=lambda m: None)


ACROBOT_TINY = [
    "task=acrobot",
    "variant=rlmu",
    "epochs=1",
    "steps_per_epoch=120",
    "random_steps=60",
    "eval_episodes=1",
    "agent.sac.hidden=[32,32]",
    "agent.sac.batch_size=64",
    "agent.rlv.obs_batch_size=64",
    "agent.encoder.state_hidden=[32]",
    "agent.encoder.state_features=16",
    "agent.mem.batch_size=8",
    "agent.mem.subseq_len=4",
    "agent.mem.lstm_layers=1",
    "agent.mem.lstm_hidden=16",
    "agent.mem.pretrain_steps=5",
]


def test_tiny_acrobot_rlmu_run_logs_generator_and_mem_losses_and_first_update_gradients(tmp_path):
    data = write_acrobot_videos(tmp_path / "obs.npz")
    cfgs = load_pack(None, [*ACROBOT_TINY, f"data.observations={data}"])
    t = Trainer(cfgs, [tmp_path / "run"], progress=False, log=lambda m: None)
    assert t.agent.task == "acrobot"
    assert t.run() == 0
    with (tmp_path / "run" / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    for column in ("loss_generator", "loss_mem", "loss_inverse", "loss_critic"):
        assert all(r[column] not in ("", "nan") and math.isfinite(float(r[column])) for r in rows), column
    norms = read_first_update(tmp_path / "run")
    assert set(norms) == {"loss_critic", "loss_inverse", "loss_generator", "loss_mem"}
    assert all(v > 0 and math.isfinite(v) for v in norms.values())
    header = (tmp_path / "run" / FIRST_UPDATE_FILE).read_text().splitlines()[0]
    assert header == "loss,scale,encoder_grad_norm"


# -------------------------------------------------------------------------------- 10. paired scale
def test_paired_scale_default_depends_on_the_task():
    assert make_agent("rlv", task="drawer").loss_scales["loss_paired"] == 1e-8
    assert make_agent("rlv", task="push").loss_scales["loss_paired"] == 1e-6
    assert make_agent("rlv").loss_scales["loss_paired"] == 1e-6
    assert make_agent("rlv", task="drawer", rlv={"paired_scale": 3e-7}).loss_scales["loss_paired"] == 3e-7
    assert "agent.rlv.paired_scale:" not in (REPO / "config" / "paper.yaml").read_text()


# ------------------------------------------------------------------- 3. summed scales, first update
def test_summed_mode_uses_its_own_scales():
    per_loss, summed = (make_agent("rlmu", rlv={"per_loss_optimizers": m}) for m in (True, False))
    cfg = summed.cfg
    assert summed.loss_scales["loss_generator"] == cfg.rlv.summed_generator_scale
    assert summed.loss_scales["loss_discriminator"] == cfg.rlv.summed_discriminator_scale
    assert summed.loss_scales["loss_inverse"] == cfg.rlv.summed_inverse_scale
    assert summed.loss_scales["loss_mem"] == cfg.mem.summed_loss_scale
    assert make_agent("rlv", rlv={"per_loss_optimizers": False}).loss_scales["loss_paired"] == (
        cfg.rlv.summed_paired_scale
    )
    assert per_loss.loss_scales["loss_generator"] == cfg.rlv.generator_scale


@pytest.mark.parametrize("obs_shape", [(3, 48, 48), STATE])
def test_no_enabled_term_is_negligible_in_summed_mode_at_initialisation(obs_shape):
    """At the first update every encoder term's gradient is at least a hundredth of the critic's (with the
    [released] scales in a sum the generator and paired terms are 1e-4 to 1e-6 of it). The pixel encoder
    of the tasks (the defaults, 48 px); heads of 32 units: with 8, a member's inverse model can start with
    every unit dead on these batches."""
    enc = TINY_STATE if obs_shape == STATE else {"channels": [16, 16, 32], "kernel": 5}
    rlv = {"per_loss_optimizers": False, "inverse_hidden": [32, 32], "discriminator_hidden": [32, 32]}
    for variant in ("rlv", "rlmu"):
        agent = make_agent(variant, seeds=(0, 1), obs_shape=obs_shape, encoder=enc, rlv=rlv)
        norms = agent.update(*batches((0, 1), obs_shape=obs_shape)).encoder_grad_norms
        assert len(norms) == 4
        for name, v in norms.items():
            assert (v >= 1e-2 * norms["loss_critic"]).all(), (variant, name, v, norms["loss_critic"])


def test_first_update_encoder_gradient_norms_are_the_scaled_gradients_per_member():
    agent = make_agent("rlv", seeds=(0, 1))
    ref = make_agent("rlv", seeds=(0, 1))
    losses = ref.compute_losses(*batches((0, 1)))
    out = agent.update(*batches((0, 1)))
    assert set(out.encoder_grad_norms) == {"loss_critic", "loss_inverse", "loss_generator", "loss_paired"}
    for name, norms in out.encoder_grad_norms.items():
        for k in range(2):
            params = [p for p in ref.group_params("encoder") if ref._member_of[p] == k]
            g = torch.autograd.grad(ref.loss_scales[name] * losses[name][k], params, retain_graph=True)
            expected = torch.linalg.vector_norm(torch.cat([x.flatten() for x in g])).item()
            assert norms[k] == pytest.approx(expected, rel=1e-5), (name, k)
    assert agent.update(*batches((0, 1), step=1)).encoder_grad_norms is None  # the first update only
    solo = make_agent("rlv", seeds=(1,)).update(*batches((1,))).encoder_grad_norms
    assert all(solo[n][0] == out.encoder_grad_norms[n][1] for n in solo)  # pack-invariant


# ------------------------------------------------------------------------------- 9. target encoder
@pytest.mark.parametrize("obs_shape", [OBS, STATE])
def test_target_encoder_lags_the_online_one_and_feeds_the_critic_target(obs_shape):
    enc = {"target": True, "target_tau": 0.1, **(TINY_STATE if obs_shape == STATE else {})}
    agent = make_agent("rlv_nopair", seeds=(0, 1), obs_shape=obs_shape, encoder=enc)
    assert "encoder_target" not in make_agent("sac", obs_shape=obs_shape).networks  # off by default
    online, target = agent.group_params("encoder"), list(agent.encoder_target.parameters())
    assert all(
        torch.equal(o, t) and o is not t and not t.requires_grad for o, t in zip(online, target, strict=True)
    )
    before = [t.detach().clone() for t in target]
    agent.update(*batches((0, 1), obs_shape=obs_shape))
    for b, o, t in zip(before, online, target, strict=True):
        assert torch.allclose(t, b.lerp(o, 0.1), atol=1e-7) and not torch.equal(t, o)
    # The critic target reads the target encoder: moving it changes the critic loss, not the others.
    rng = [g.get_state() for g in agent.rngs]
    data = batches((0, 1), obs_shape=obs_shape, step=1)
    first = agent.compute_losses(*data)
    with torch.no_grad():
        for t in target:
            t.add_(0.5)
    for g, s in zip(agent.rngs, rng, strict=True):
        g.set_state(s)
    second = agent.compute_losses(*data)
    assert not torch.equal(first["loss_critic"], second["loss_critic"])
    assert torch.equal(first["loss_inverse"], second["loss_inverse"])
    # Checkpoints carry it.
    other = make_agent("rlv_nopair", seeds=(0, 1), obs_shape=obs_shape, encoder=enc)
    other.load_state_dict(agent.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(target, other.encoder_target.parameters(), strict=True))
