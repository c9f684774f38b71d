"""Run configuration: a pydantic model, loaded from YAML plus dotted command-line overrides.

Resolution order (later wins): field defaults < variant preset (``rlmu.train.variants``) < config file
< ``key=value`` overrides. Every problem is reported before any work starts, as one line naming the
field (``rlmu.cli.UserError``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlmu.agent import AgentConfig
from rlmu.errors import UserError
from rlmu.tasks import get_task
from rlmu.train.variants import VARIANTS, variant_overrides
from rlmu.virl import VirlConfig


class DataConfig(BaseModel):
    """Observation data (RLV, RLMU and the augmentation variants) and paired data (RLV)."""

    model_config = ConfigDict(extra="forbid")

    observations: str | None = None  # path of the observation-video dataset (rlmu.data.format)
    paired: str | None = None  # path of the paired robot/human dataset (rlv.paired)
    # Video Data Generator (METHODS section 2): applied by the trainer unless ``augmented`` names a file.
    augment: Literal["none", "reverse", "jitter"] = "none"
    jitter: int = Field(5, ge=1)  # j: frames forward, then the same frames reversed
    augment_ratio: float = Field(1.0, gt=0.0)  # augmented videos per original video
    jitter_start: tuple[int, int] = (10, 25)  # start frame s drawn uniformly from this closed range
    negative_reward: float | None = Field(None, lt=0.0)  # reward inside reversed segments (None: 0)
    # A file of augmented videos made by ``rlmu data augment`` from ``observations``; when set it is used
    # instead of running the Video Data Generator in the trainer (its mode must match ``augment``).
    augmented: str | None = None

    @field_validator("jitter_start")
    @classmethod
    def _ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high")
        return v


class VirlTrainConfig(VirlConfig):
    """VIRL (METHODS section 3): the distance model's fields (``rlmu.virl.VirlConfig``, flat: ``virl.rnn``,
    ``virl.reward_mode``, ``virl.train_steps`` = distance updates per round, ...) plus the trainer's.

    With ``enabled`` the reward that SAC learns from is the VIRL reward of the distance to the
    demonstration, never the environment's; evaluation still reports the true task return.
    """

    enabled: bool = False
    # The demonstration: episode ``demo_episode`` of an observation-video file (``rlmu data generate``);
    # without a file, one episode of the task's noise-free scripted expert (Acrobot: quality "high") in the
    # agent's own environment, reset with ``demo_seed``.
    demo: str | None = None
    demo_episode: int = Field(0, ge=0)
    demo_seed: int = Field(0, ge=0)
    # Videos of other tasks (negatives "another task's video"): an observation-video file, all episodes.
    other_videos: str | None = None
    retrain_every: int = Field(1000, ge=1)  # environment steps per policy round (between retrains)
    rollouts_kept: int = Field(20, ge=0)  # most recent complete agent episodes used as training pairs
    pretrain_steps: int = Field(500, ge=0)  # distance updates on the demo (+ other videos) before RL

    def distance_config(self) -> VirlConfig:
        """The fields of ``rlmu.virl.VirlConfig`` alone (what the distance model and reward read)."""
        return VirlConfig(**{k: getattr(self, k) for k in VirlConfig.model_fields})


class TrainConfig(BaseModel):
    """One run: (variant, task, seed) and every knob of the loop. Defaults follow METHODS section 3."""

    model_config = ConfigDict(extra="forbid")

    study: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$")
    task: str
    variant: str
    seed: int = Field(0, ge=0)
    epochs: int = Field(300, ge=1)
    steps_per_epoch: int = Field(1000, ge=1)  # environment steps per epoch
    eval_episodes: int = Field(5, ge=1)  # deterministic evaluation episodes at each epoch end
    random_steps: int = Field(1000, ge=0)  # uniform random actions before the policy acts
    replay_size: int = Field(1_000_000, ge=1)  # interaction buffer capacity, capped by the run length
    updates_per_step: int = Field(1, ge=0)  # gradient updates per environment step after random_steps
    image_size: int = Field(48, ge=16, le=256)
    checkpoint_every: int = Field(10, ge=1)  # epochs between checkpoints (the last epoch always has one)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    # CPU threads of torch (0: torch's default). One thread per run is the fastest setup when many runs
    # share a machine, and it is part of what makes CPU runs reproducible (reduction order).
    torch_threads: int = Field(1, ge=0)
    tensorboard: bool = False
    data: DataConfig = Field(default_factory=DataConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    virl: VirlTrainConfig = Field(default_factory=VirlTrainConfig)

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        return get_task(v).name  # raises ValueError listing the choices; stores the short name

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, v: str) -> str:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; choose one of: {', '.join(VARIANTS)}")
        return v

    @model_validator(mode="after")
    def _data_present(self) -> TrainConfig:
        if self.agent.rlv.enabled and not self.data.observations:
            raise ValueError(f"variant {self.variant!r} needs observation data: set data.observations")
        if self.agent.rlv.enabled and self.agent.rlv.paired and not self.data.paired:
            raise ValueError(f"variant {self.variant!r} uses the paired loss: set data.paired")
        if self.data.augmented and self.data.augment == "none":
            raise ValueError("data.augmented is set but data.augment is 'none'")
        if self.data.augment != "none" and not self.agent.rlv.enabled:
            raise ValueError("data.augment needs an observation buffer (agent.rlv.enabled)")
        if self.virl.enabled and (self.agent.rlv.enabled or self.agent.mem.enabled):
            raise ValueError(
                "virl.enabled learns from the VIRL reward with plain SAC: set agent.rlv.enabled and "
                "agent.mem.enabled to false"
            )
        if not self.virl.enabled and (self.virl.demo or self.virl.other_videos):
            raise ValueError("virl.demo / virl.other_videos are set but virl.enabled is false")
        return self

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def replay_capacity(self) -> int:
        """Interaction buffer capacity: ``replay_size`` capped by the number of environment steps."""
        return min(self.replay_size, self.total_steps)

    def default_run_dir(self) -> Path:
        return Path("results") / self.study / "runs" / self.task / self.variant / f"seed_{self.seed}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# ----------------------------------------------------------------------------------------------------
# Loading


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["agent.sac.lr=1e-3", "seed=3"]`` -> nested dict; values are parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError(f"override {item!r} is not of the form key=value (e.g. agent.sac.lr=1e-3)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise UserError(f"override {key}: cannot parse value {raw!r}: {exc}") from None
        value = _yaml11_float(value)
        _set_dotted(out, key.split("."), value, item)
    return out


def _yaml11_float(value: Any) -> Any:
    # YAML 1.1 reads "1e-3" (no dot) as a string; on a command line it is meant as a number.
    if isinstance(value, str):
        try:
            return float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "infinity") else value
        except ValueError:
            return value
    return value


def _set_dotted(tree: dict[str, Any], parts: list[str], value: Any, item: str) -> None:
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"override {item!r} conflicts with {'.'.join(parts[: i + 1])}={child!r}")
        node = child
    node[parts[-1]] = value


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``top`` over ``base``, merging nested dicts key by key."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str = "config") -> str:
    """One readable line per problem, naming the dotted field: ``config: agent.sac.lr: ...``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"{source}: {loc}: {msg}")
    return "; ".join(lines)


def resolve_config(user: dict[str, Any]) -> TrainConfig:
    """Validate a user mapping (file merged with overrides) after putting the variant preset under it."""
    variant = user.get("variant")
    merged = user
    if isinstance(variant, str) and variant in VARIANTS:
        merged = deep_merge(variant_overrides(variant), user)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc)) from None


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` (optional), apply ``key=value`` overrides and the variant preset, validate."""
    user = read_yaml_file(path) if path is not None else {}
    user = deep_merge(user, parse_overrides(overrides or []))
    return resolve_config(user)


def config_diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings."""
    keys = sorted(set(a) | set(b))
    out: list[str] = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out
