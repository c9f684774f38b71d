"""Config loading: variant presets, overrides, and errors that name the field before any work starts."""

from __future__ import annotations

import pytest

from rlmu.errors import UserError
from rlmu.train.config import load_config, parse_overrides
from rlmu.train.variants import VARIANTS

BASE = ["task=acrobot", "variant=sac"]


def test_overrides_are_yaml_scalars_and_nest():
    out = parse_overrides(["agent.sac.lr=1e-3", "seed=3", "data.jitter_start=[5, 9]", "tensorboard=true"])
    assert out == {
        "agent": {"sac": {"lr": 1e-3}},
        "seed": 3,
        "data": {"jitter_start": [5, 9]},
        "tensorboard": True,
    }


def test_preset_applies_and_explicit_values_win(tmp_path):
    cfg = load_config(None, ["task=acrobot", "variant=rlmu", "data.observations=x.npz"])
    assert cfg.agent.rlv.enabled and cfg.agent.mem.enabled and not cfg.agent.rlv.paired
    f = tmp_path / "c.yaml"
    f.write_text(
        "task: push\nvariant: rlv_jitter5_half\ndata: {observations: o.npz, paired: p.npz, jitter: 7}\n"
    )
    cfg = load_config(f, ["seed=4"])
    assert (cfg.data.augment, cfg.data.jitter, cfg.data.augment_ratio, cfg.seed) == ("jitter", 7, 0.5, 4)
    assert cfg.agent.rlv.paired  # from the preset
    cfg = load_config(f, ["agent.rlv.paired=false"])
    assert not cfg.agent.rlv.paired  # the command line beats the preset


def test_task_short_name_and_gym_id():
    assert load_config(None, ["task=rlmu/AcrobotContinuous-v0", "variant=sac"]).task == "acrobot"


def test_every_preset_validates():
    for name in VARIANTS:
        cfg = load_config(
            None, ["task=push", f"variant={name}", "data.observations=o.npz", "data.paired=p.npz"]
        )
        assert cfg.variant == name
    neg = load_config(None, ["task=push", "variant=rlv_negreward", "data.observations=o", "data.paired=p"])
    assert neg.data.negative_reward == -0.1 and neg.data.augment == "jitter" and neg.data.jitter == 5


@pytest.mark.parametrize(
    "overrides, field",
    [
        (["task=acrobot", "variant=nope"], "variant"),
        (["task=moon", "variant=sac"], "task"),
        ([*BASE, "epochs=0"], "epochs"),
        ([*BASE, "agent.sac.lr=-1"], "agent.sac.lr"),
        ([*BASE, "agent.sac.colour=red"], "agent.sac.colour"),
        ([*BASE, "typo_key=1"], "typo_key"),
        ([*BASE, "data.augment=sideways"], "data.augment"),
        (["variant=sac"], "task"),
        (["task=acrobot", "variant=rlv_nopair"], "data.observations"),
        (["task=push", "variant=rlv", "data.observations=o.npz"], "data.paired"),
    ],
)
def test_errors_name_the_field(overrides, field):
    with pytest.raises(UserError) as info:
        load_config(None, overrides)
    msg = str(info.value)
    assert field in msg
    assert "\n" not in msg


def test_unknown_variant_lists_choices():
    with pytest.raises(UserError, match="rlv_jitter5_half"):
        load_config(None, ["task=acrobot", "variant=rlv_jiter5"])


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(UserError, match="nothere.yaml"):
        load_config(tmp_path / "nothere.yaml")


def test_replay_capacity_capped_by_run_length():
    cfg = load_config(None, [*BASE, "epochs=2", "steps_per_epoch=100"])
    assert cfg.replay_capacity == 200
    assert load_config(None, [*BASE, "replay_size=50", "epochs=2"]).replay_capacity == 50


def test_missing_dataset_fails_naming_file(tmp_path, capsys):
    from rlmu.cli import main

    gone = tmp_path / "gone.npz"
    run = tmp_path / "run"
    rc = main(
        ["train", "--run-dir", str(run), "task=acrobot", "variant=rlv_nopair", f"data.observations={gone}"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("rlmu: error: ") and "gone.npz" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()


def test_example_configs_validate():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parents[1] / "configs" / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        assert load_config(path).variant in VARIANTS


def test_cli_overrides_may_follow_options(tmp_path):
    """`rlmu train --run-dir D key=value` and overrides split around options both reach the config."""
    from rlmu.cli import build_parser, main

    # Both halves are collected (the error names fields from each half, so both were parsed).
    rc = main(["train", "task=acrobot", "--run-dir", str(tmp_path / "r"), "epochs=0", "variant=nope"])
    assert rc == 2
    # An unknown option is still an error, not an override.
    with pytest.raises(SystemExit):
        main(["train", "--run-dir", str(tmp_path / "r"), "--bogus"])
    assert build_parser().parse_known_args(["train", "a=1"])[0].overrides == ["a=1"]


def test_cli_split_overrides_error_names_fields_from_both_halves(tmp_path, capsys):
    from rlmu.cli import main

    assert main(["train", "task=acrobot", "--run-dir", str(tmp_path / "r"), "epochs=0", "variant=sac"]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "variant" not in err  # variant=sac after the option was applied


# ---- config files that are not YAML text, and numbers numpy and torch cannot use --------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("seed: 1\nnote: caf\u00e9\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset"),
        ("seed: 1\n".encode("utf-16"), "is UTF-16 text"),
        ("seed: 1\n".encode("utf-16-be"), "binary (NUL byte"),
        (bytes(range(256)), "is not UTF-8 text"),
        (b"seed: 1\x00\n", "binary (NUL byte at offset 7)"),
        (b"\x7fELF\x02\x01\x01", "not valid YAML"),
        (b"seed: [1, 2\n", "not valid YAML: line 2"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b"a: " + b"{b: " * 40 + b"1" + b"}" * 40, "nested more than 32 levels"),
        (b"- 1\n- 2\n", "must hold a mapping, not list"),
        (b"x" * (2 << 20), "larger than"),
    ],
)
def test_bad_config_files_name_the_file(tmp_path, content, words):
    path = tmp_path / "run.yaml"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        load_config(path, BASE)
    msg = str(info.value)
    assert str(path) in msg and words in msg and "\n" not in msg, msg


def test_utf8_with_bom_is_read_and_a_directory_is_refused(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffseed: 4\n".encode())
    assert load_config(path, BASE).seed == 4
    with pytest.raises(UserError, match="is a directory"):
        load_config(tmp_path, BASE)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["seed=18446744073709551617"], "seed: integer 18446744073709551617 does not fit in 64 bits"),
        (["seed=" + "9" * 400], "seed: integer 999999999999... (400 digits) does not fit"),
        (["agent.sac.hidden=[256, 100000000000000000000]"], "agent.sac.hidden.1: integer"),
        (["agent.sac.lr=inf"], "agent.sac.lr: must be a finite number (got inf)"),
        (["agent.sac.lr=.inf"], "agent.sac.lr: must be a finite number"),
        (["agent.sac.gamma=.nan"], "agent.sac.gamma"),
        (
            ["agent.sac.log_std_min=-inf", "agent.sac.log_std_max=2"],
            "agent.sac.log_std_min: must be a finite",
        ),
        (["agent.sac.lr=1e400"], "agent.sac.lr: must be a finite number"),
        (
            ["variant=rlv_negreward", "data.observations=o", "data.paired=p", "data.negative_reward=-.inf"],
            "data.negative_reward: must be a finite",
        ),
        (["epochs=4611686018427387904", "steps_per_epoch=4"], "epochs x steps_per_epoch"),
        (["seed=" + "[" * 3000 + "]" * 3000], "override seed: value nested too deeply"),
        (
            ["seed=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"],
            "nested more than 32",
        ),
        (["seed={a: [1"], "override seed: cannot parse value"),
    ],
)
def test_numbers_that_numpy_or_torch_cannot_use_are_refused(overrides, words):
    with pytest.raises(UserError) as info:
        load_config(
            None,
            [*BASE, *overrides, "data.observations=o.npz"]
            if "rlv" in str(overrides)
            else [*BASE, *overrides],
        )
    msg = str(info.value)
    assert words in msg and "\n" not in msg, msg


# ---- the machine: device and memory ---------------------------------------------------------------------


def test_unavailable_devices_are_refused(monkeypatch):
    import torch

    from rlmu.train.config import check_device, check_machine

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(UserError, match=rf"config: device: '{device}' is not available here"):
            check_machine(load_config(None, [*BASE, f"device={device}"]))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(UserError, match="'cuda:2' does not exist; this machine has 2 CUDA device"):
        check_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserError, match="config: device: 'mps' is not available"):
        check_machine(load_config(None, [*BASE, "device=mps"]))
    check_device("cpu")
    check_device("auto")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["replay_size=1000000000000", "epochs=1000000", "steps_per_epoch=1000000"], "replay_size"),
        (["replay_size=10**15", "epochs=100000", "steps_per_epoch=10000000"], "epochs x steps_per_epoch"),
        (["agent.sac.hidden=[100000000000]"], "agent.sac.batch_size x agent.sac.hidden"),
        (["agent.sac.hidden=[100000, 100000]"], "agent.sac.hidden"),
        (["agent.sac.batch_size=1000000000000"], "agent.sac.batch_size x agent.sac.hidden"),
        (["epochs=100000000000", "replay_size=10"], "epochs"),
        (["agent.encoder.channels=[100000, 100000]", "task=push"], "agent.encoder.channels"),
    ],
)
def test_sizes_that_cannot_be_allocated_are_refused(overrides, field):
    from rlmu.train.config import check_machine

    overrides = [o.replace("10**15", str(10**15)) for o in overrides]
    cfg = load_config(None, [*BASE, *overrides])  # valid as a config ...
    with pytest.raises(UserError) as info:
        check_machine(cfg, available=8 * 2**30)  # ... but not on an 8 GiB machine
    msg = str(info.value)
    assert msg.startswith(f"config: {field}: the run needs about") and "8 GiB available" in msg, msg
    assert "\n" not in msg


def test_default_sized_runs_fit_a_small_machine():
    from rlmu.train.config import check_machine, memory_estimate

    for task in ("acrobot", "push"):
        for variant in ("sac", "rlmu"):
            cfg = load_config(None, [f"task={task}", f"variant={variant}", "data.observations=o.npz"])
            check_machine(cfg, available=8 * 2**30)
    push = load_config(None, ["task=push", "variant=sac"])
    # The replay buffer of a default push run (300,000 transitions of 48 px frames): about 2 GiB.
    assert 1.9 * 2**30 < memory_estimate(push)["epochs x steps_per_epoch"] < 2.1 * 2**30


def test_a_seed_pack_is_checked_as_a_whole():
    from rlmu.train.config import check_machine, memory_estimate

    one = load_config(None, ["task=push", "variant=sac"])
    need = sum(memory_estimate(one).values())
    check_machine([one, one], available=int(2.5 * need))
    with pytest.raises(UserError, match=r"the 3 runs of the pack need about .* this machine has"):
        check_machine([one, one, one], available=int(2.5 * need))
