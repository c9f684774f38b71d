"""Seed packs: a member's numbers do not depend on its pack-mates, and a diverged member leaves the others
as they would have been without it."""

import numpy as np
import pytest
import torch
from test_agent import batches, make_agent, member_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Batch sizes are multiples of 64: the CPU softplus / sigmoid kernels compute a vectorised body and a scalar
# tail with different formulas, so a member's numbers stay independent of where its block of elements
# starts in the pack's tensor only if every member's block is a whole number of vectors.
SIZES = {"n": 64, "m": 64, "pairs": 64, "mem_n": 64}
CASES = {
    "state_sac": ("sac", (6,), {}),
    "state_rlv": ("rlv_nopair", (6,), {}),
    "state_rlmu": ("rlmu", (6,), {}),
    "pixel_sac": ("sac", (3, 48, 48), {}),
    "pixel_rlv": ("rlv", (3, 48, 48), {}),
}


def run_member(variant, obs_shape, seeds, member=3, updates=3, **over):
    """Train the pack ``seeds`` for a few updates on each member's own batches; return member ``member``'s
    losses per update, its parameters and its actions (deterministic and sampled) afterwards."""
    agent = make_agent(variant, seeds=seeds, obs_shape=obs_shape, **over)
    k = seeds.index(member)
    losses = []
    if agent.motion_extractor is not None:
        out = agent.pretrain_mem_step(batches(seeds, 99, obs_shape=obs_shape, **SIZES)[3])
        losses.append({name: v[k] for name, v in out.values.items()})
    for step in range(updates):
        out = agent.update(*batches(seeds, step, obs_shape=obs_shape, **SIZES))
        assert out.diverged == []
        losses.append({name: v[k] for name, v in out.values.items()})
    obs = batches(seeds, 50, obs_shape=obs_shape, **SIZES)[0]["obs"][:, 0].numpy()
    actions = (agent.act(obs, deterministic=True)[k], agent.act(obs, deterministic=False)[k])
    return losses, member_params(agent, k), actions


@pytest.mark.parametrize("case", list(CASES))
def test_a_member_is_bit_identical_alone_and_in_any_pack(case):
    variant, obs_shape, over = CASES[case]
    alone = run_member(variant, obs_shape, (3,), **over)
    for seeds in [(1, 3), (3, 4, 5, 6)]:
        losses, member, actions = run_member(variant, obs_shape, seeds, **over)
        assert losses == alone[0], seeds  # every loss of every update, to the last bit
        assert member.keys() == alone[1].keys()
        assert all(torch.equal(member[name], alone[1][name]) for name in member), seeds
        assert all(np.array_equal(a, b) for a, b in zip(actions, alone[2], strict=True)), seeds


def poison(data, member, where, key):
    """``data`` with one NaN in member ``member``'s ``where`` batch (0 interaction, 1 observation, 3 MEM)."""
    data = [dict(d) for d in data]
    value = data[where][key].clone()
    value[member].view(-1)[5] = float("nan")
    data[where][key] = value
    return data


@pytest.mark.parametrize(
    ("variant", "obs_shape", "where", "key", "loss"),
    [
        ("sac", (6,), 0, "reward", "loss_critic"),
        ("rlv_nopair", (6,), 0, "obs", "loss_inverse"),  # the first loss of the update turns NaN
        ("rlv_nopair", (3, 16, 16), 1, "reward", "loss_critic"),
        ("rlmu", (6,), 3, "frames", "loss_mem"),
    ],
)
def test_a_diverged_member_leaves_the_others_as_they_were(variant, obs_shape, where, key, loss):
    """Member 1 of three gets a NaN in its batch at update 1: it is reported once (member, loss, value) and
    leaves the pack; members 0 and 2 train bit-identically to a run without the NaN, and member 1 takes no
    optimizer step from then on (so no non-finite one)."""
    seeds = (2, 5, 8)
    clean = make_agent(variant, seeds=seeds, obs_shape=obs_shape)
    bad = make_agent(variant, seeds=seeds, obs_shape=obs_shape)
    initial = member_params(bad, 1)
    for step in range(4):
        data = batches(seeds, step, obs_shape=obs_shape, **SIZES)
        ref = clean.update(*data)
        got = bad.update(*(poison(data, 1, where, key) if step == 1 else data))
        if step == 0:
            trained = member_params(bad, 1)
        assert ref.diverged == []
        if step == 1:
            assert len(got.diverged) == 1
            member, name, value = got.diverged[0]
            assert (member, name) == (1, loss) and np.isnan(value)
        else:
            assert got.diverged == []  # reported once, in the update it happened
        for name, v in ref.values.items():
            assert np.array_equal(got.values[name][[0, 2]], v[[0, 2]]), (step, name)
            if step >= 1:
                assert np.isnan(got.values[name][1]), (step, name)
    assert bad.active.tolist() == [True, False, True]
    for k in (0, 2):
        pc, pb = member_params(clean, k), member_params(bad, k)
        assert all(torch.equal(pc[name], pb[name]) for name in pc), k
    after = member_params(bad, 1)
    assert all(torch.isfinite(p).all() for p in after.values())
    # it trained at update 0, before the NaN, and took no optimizer step from then on (only its target
    # critic still follows its critic)
    assert not torch.equal(initial["log_alpha"], trained["log_alpha"])
    online = [name for name in after if not name.startswith("critic_target.")]
    assert all(torch.equal(after[name], trained[name]) for name in online)


def test_a_member_diverged_in_mem_pretraining_stays_out():
    seeds = (2, 5)
    clean = make_agent("rlmu", seeds=seeds, obs_shape=(6,))
    bad = make_agent("rlmu", seeds=seeds, obs_shape=(6,))
    data = batches(seeds, 0, obs_shape=(6,), **SIZES)
    clean.pretrain_mem_step(data[3])
    out = bad.pretrain_mem_step(poison(data, 0, 3, "frames")[3])
    assert [(m, n) for m, n, _ in out.diverged] == [(0, "loss_mem")]
    for step in range(2):
        data = batches(seeds, step + 1, obs_shape=(6,), **SIZES)
        ref, got = clean.update(*data), bad.update(*data)
        assert got.diverged == []
        assert all(np.isnan(v[0]) and v[1] == ref.values[name][1] for name, v in got.values.items())
    pc, pb = member_params(clean, 1), member_params(bad, 1)
    assert all(torch.equal(pc[name], pb[name]) for name in pc)
    # member 0 never trained: every parameter as initialised (its target critic follows an unchanged critic)
    fresh = member_params(make_agent("rlmu", seeds=seeds, obs_shape=(6,)), 0)
    assert all(torch.equal(p, fresh[name]) for name, p in member_params(bad, 0).items())
