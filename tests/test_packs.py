"""Seed packs: a seed's results do not depend on the pack it trains in; faults, preemption and resume of a pack."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_resume import REPO, n_rows, preempt_at, write_acrobot_videos
from test_trainer import push_data  # noqa: F401  (fixture)

from rlmu.errors import UserError
from rlmu.train import DIVERGED_EXIT_CODE, PREEMPTED_EXIT_CODE
from rlmu.train.cli import load_pack, pack_seeds
from rlmu.train.trainer import Trainer

# Batch sizes are multiples of 64: the CPU softplus / sigmoid kernels compute a vectorised body and a scalar
# tail with different formulas, so a member's block of elements must be a whole number of vectors for its
# numbers not to depend on its neighbours (rlmu.agent.networks).
TINY = [
    "task=acrobot",
    "epochs=2",
    "steps_per_epoch=150",
    "random_steps=60",
    "eval_episodes=2",
    "agent.sac.hidden=[32,32]",
    "agent.sac.batch_size=64",
    "agent.rlv.obs_batch_size=64",
    "agent.rlv.paired=false",
    "agent.mem.batch_size=8",
    "agent.mem.subseq_len=4",
    "agent.mem.lstm_layers=1",
    "agent.mem.lstm_hidden=16",
    "agent.mem.pretrain_steps=10",
]


@pytest.fixture(scope="module")
def acrobot_data(tmp_path_factory):
    return write_acrobot_videos(tmp_path_factory.mktemp("data") / "acrobot_obs.npz")


def _overrides(variant, data, extra=()):
    out = [*TINY, f"variant={variant}", *extra]
    if variant != "sac":
        out.append(f"data.observations={data}")
    return out


def _train_pack(root: Path, seeds, overrides, **kw) -> tuple[int, Trainer]:
    cfgs = load_pack(None, [*overrides, f"seeds={list(seeds)}".replace(" ", "")])
    t = Trainer(
        cfgs, [root / f"seed_{c.seed}" for c in cfgs], root / "pack", progress=False, log=lambda m: None, **kw
    )
    return t.run(), t


@pytest.mark.parametrize("variant", ["sac", "rlv_nopair", "rlmu"])
def test_a_seed_gives_the_same_csv_alone_and_in_any_pack(tmp_path, acrobot_data, variant):
    ov = _overrides(variant, acrobot_data)
    csvs = {}
    for seeds in ([3], [1, 3], [3, 4, 5, 6]):
        code, _ = _train_pack(tmp_path / "-".join(map(str, seeds)), seeds, ov)
        assert code == 0
        run = tmp_path / "-".join(map(str, seeds)) / "seed_3"
        # first_update.csv: the encoder gradient norms of the first update (the state encoder is learned)
        csvs[tuple(seeds)] = ((run / "progress.csv").read_bytes(), (run / "first_update.csv").read_bytes())
    assert csvs[(3,)] == csvs[(1, 3)] == csvs[(3, 4, 5, 6)]
    # Other seeds give other results (the test could fail).
    assert (tmp_path / "1-3" / "seed_1" / "progress.csv").read_bytes() != csvs[(3,)][0]
    assert (tmp_path / "1-3" / "seed_1" / "first_update.csv").read_bytes() != csvs[(3,)][1]
    rec = json.loads((tmp_path / "3-4-5-6" / "seed_3" / "run.json").read_text())
    assert rec["status"] == "completed" and rec["pack"] == [3, 4, 5, 6] and rec["seed"] == 3


def test_a_diverged_member_stops_and_the_others_go_on(tmp_path, monkeypatch):
    import torch

    from rlmu.agent import Agent

    ov = _overrides("sac", None)
    assert _train_pack(tmp_path / "solo", [2], ov)[0] == 0
    original = Agent.update

    def update(self, batch, **kw):  # poison member seed 5's critic at update 20
        if self.update_step == 20 and 5 in self.seeds:
            k = self.seeds.index(5)
            with torch.no_grad():
                self.critic.q.layers[0].members[k].weight.fill_(float("nan"))
        return original(self, batch, **kw)

    monkeypatch.setattr(Agent, "update", update)
    code, t = _train_pack(tmp_path / "pack", [2, 5], ov)
    assert code == DIVERGED_EXIT_CODE
    bad = json.loads((tmp_path / "pack" / "seed_5" / "run.json").read_text())
    good = json.loads((tmp_path / "pack" / "seed_2" / "run.json").read_text())
    assert bad["status"] == "diverged" and "loss_critic" in bad["error"] and "update 20" in bad["error"]
    assert bad["epochs_done"] == 0 and good["status"] == "completed" and good["epochs_done"] == 2
    assert (tmp_path / "pack" / "seed_2" / "progress.csv").read_bytes() == (
        tmp_path / "solo" / "seed_2" / "progress.csv"
    ).read_bytes()
    assert n_rows(tmp_path / "pack" / "seed_5" / "progress.csv") == 0
    # The diverged member took no step after it left the pack: its other networks are still finite.
    assert all(torch.isfinite(p).all() for p in t.agent.actor.net.layers[0].members[1].parameters())


def test_preempted_pack_resumes_exactly_and_refuses_another_seed_set(tmp_path, acrobot_data):
    ov = _overrides("rlv_nopair", acrobot_data)
    assert _train_pack(tmp_path / "ref", [0, 7], ov)[0] == 0
    cfgs = load_pack(None, [*ov, "seeds=[0,7]"])
    root = tmp_path / "run"
    t = Trainer(cfgs, [root / "seed_0", root / "seed_7"], root / "pack", progress=False, log=lambda m: None)
    preempt_at(t, 97)
    assert t.run() == PREEMPTED_EXIT_CODE
    assert json.loads((root / "seed_7" / "run.json").read_text())["status"] == "preempted"
    with pytest.raises(UserError, match=r"seeds \[0, 7\].*this pack is \[0\]"):
        Trainer(cfgs[:1], [root / "seed_0"], root / "pack", progress=False, log=lambda m: None).run()
    assert _train_pack(root, [0, 7], ov)[0] == 0
    for s in (0, 7):
        assert (root / f"seed_{s}" / "progress.csv").read_bytes() == (
            tmp_path / "ref" / f"seed_{s}" / "progress.csv"
        ).read_bytes()


def test_pack_seeds_from_the_command_line():
    assert pack_seeds({"seeds": [4, 1, 3]}) == [1, 3, 4]
    assert pack_seeds({"seed": 2}) == [2]
    for bad in ([], [1, 1], [-1], ["a"], 3):
        with pytest.raises(UserError, match="seeds"):
            pack_seeds({"seeds": bad})
    with pytest.raises(UserError, match="not both"):
        pack_seeds({"seeds": [1], "seed": 1})


def _cli(args, cwd):  # noqa: ARG001
    return [sys.executable, "-m", "rlmu", "train", "--no-progress", *args]


def test_cli_pack_directories_and_finished_members(tmp_path):
    ov = [*_overrides("sac", None), "study=packs"]
    out = subprocess.run(_cli([*ov, "seeds=[1,2]"], tmp_path), cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    runs = tmp_path / "results" / "packs" / "runs" / "acrobot" / "sac"
    assert (runs / "seed_1" / "progress.csv").exists() and (runs / "seed_2" / "run.json").exists()
    assert (tmp_path / "results/packs/packs/acrobot/sac/seeds_1-2/checkpoints/latest.pt").exists()
    again = subprocess.run(_cli([*ov, "seeds=[1,2]"], tmp_path), cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    # A new pack that holds a finished seed would train it again: refused, naming the seed and its run.
    mixed = subprocess.run(_cli([*ov, "seeds=[2,3]"], tmp_path), cwd=tmp_path, capture_output=True, text=True)
    assert mixed.returncode == 2 and "seeds [2]" in mixed.stderr and "seed_2" in mixed.stderr
    assert "Traceback" not in mixed.stderr


@pytest.mark.slow
def test_pack_kill9_and_sigterm_resume_exactly(tmp_path):
    ov = [*_overrides("sac", None, ["epochs=4", "steps_per_epoch=100", "checkpoint_every=1"]), "seeds=[1,4]"]

    def cmd(root):
        return [sys.executable, "-m", "rlmu", "train", "--no-progress", "--runs-dir", str(root),
                "--pack-dir", str(root / "pack"), *ov]  # fmt: skip

    ref = subprocess.run(cmd(tmp_path / "ref"), cwd=REPO, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    expected = {s: (tmp_path / "ref" / f"seed_{s}" / "progress.csv").read_bytes() for s in (1, 4)}

    for how, sig in (("killed", signal.SIGKILL), ("termed", signal.SIGTERM), ("early", signal.SIGTERM)):
        root = tmp_path / how
        proc = subprocess.Popen(
            cmd(root), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if how == "early":
            time.sleep(0.3)  # within the first second: imports, configs, environments still loading
        else:
            deadline = time.monotonic() + 300
            while n_rows(root / "seed_4" / "progress.csv") < 2:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
        if sig == signal.SIGTERM:
            assert proc.returncode == PREEMPTED_EXIT_CODE, out
        again = subprocess.run(cmd(root), cwd=REPO, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        for s in (1, 4):
            assert (root / f"seed_{s}" / "progress.csv").read_bytes() == expected[s], (how, s)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["sac", "rlv"])
def test_a_pixel_seed_gives_the_same_csv_alone_and_in_any_pack(tmp_path, push_data, variant):  # noqa: F811
    obs, paired = push_data
    ov = [
        "task=push", f"variant={variant}", "epochs=2", "steps_per_epoch=25", "random_steps=15",
        "eval_episodes=1", "agent.sac.hidden=[32]", "agent.sac.batch_size=64", "agent.rlv.obs_batch_size=64",
        f"data.observations={obs}", f"data.paired={paired}",
    ]  # fmt: skip
    csvs = []
    for seeds in ([3], [1, 3], [3, 4, 5, 6]):
        root = tmp_path / "-".join(map(str, seeds))
        assert _train_pack(root, seeds, ov)[0] == 0
        csvs.append((root / "seed_3" / "progress.csv").read_bytes())
    assert csvs[0] == csvs[1] == csvs[2]
    assert (tmp_path / "1-3" / "seed_1" / "progress.csv").read_bytes() != csvs[0]


@pytest.mark.slow
def test_pixel_environments_in_worker_processes_give_the_same_results(tmp_path, push_data):  # noqa: F811
    obs, paired = push_data
    ov = [
        "task=push", "variant=sac", "epochs=2", "steps_per_epoch=25", "random_steps=15", "eval_episodes=2",
        "agent.sac.hidden=[32]", "agent.sac.batch_size=64",
    ]  # fmt: skip
    assert _train_pack(tmp_path / "local", [0, 1, 2], ov)[0] == 0
    assert _train_pack(tmp_path / "workers", [0, 1, 2], [*ov, "env_workers=2"])[0] == 0
    for s in (0, 1, 2):
        assert (tmp_path / "workers" / f"seed_{s}" / "progress.csv").read_bytes() == (
            tmp_path / "local" / f"seed_{s}" / "progress.csv"
        ).read_bytes()
