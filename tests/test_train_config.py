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


def test_missing_dataset_fails_naming_file(tmp_path):
    from rlmu.train.trainer import Trainer

    cfg = load_config(
        None, ["task=acrobot", "variant=rlv_nopair", f"data.observations={tmp_path / 'gone.npz'}"]
    )
    with pytest.raises(UserError, match="gone.npz"):
        Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


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
