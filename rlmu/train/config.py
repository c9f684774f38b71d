"""Run configuration: a pydantic model, loaded from YAML plus dotted command-line overrides.

Resolution order (later wins): field defaults < variant preset (``rlmu.train.variants``) < config file
< ``key=value`` overrides. Every problem is reported before any work starts, as one line naming the
field or the file (``rlmu.errors.UserError``).

Two levels of checks:

- :func:`resolve_config` (and :func:`load_config`, which reads a file and overrides first) validates the
  config itself, wherever it is run: the pydantic models, plus every number of the resolved config (no
  integer outside int64, no NaN or infinite float, ``epochs x steps_per_epoch`` inside int64). A study's
  DAG can be checked with it on a machine other than the one that trains.
- :func:`check_machine` checks a config against the machine that is about to run it: the device exists
  in this torch, and the memory the run will allocate up front (replay buffer, networks and their Adam
  state, one update's batch) fits in what this process can still allocate (``/proc/meminfo`` or the
  cgroup limit; GPU memory for a CUDA device). ``rlmu train`` calls it before any work.
"""

from __future__ import annotations

import copy
import math
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
    # How "repeatedly copy the next j frames" reads (rlmu.data.vdg): ``fixed`` repeats the chunk [s, s+j)
    # back and forth; ``advancing`` moves the chunk on by j frames each back-and-forth cycle.
    jitter_mode: Literal["fixed", "advancing"] = "fixed"
    # Added to the step reward of every transition inside a reversed segment (push/drawer 0 + r, Acrobot
    # -1 + r; the report "adds a small negative reward"). None: no penalty.
    negative_reward: float | None = Field(None, lt=0.0)
    # Which observation videos earn the terminal success reward: ``any_step`` (the task's success held on
    # some step: the task definition) or ``final_frame`` (the video ends in a goal state).
    success: Literal["any_step", "final_frame"] = "any_step"
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
    # Videos of other tasks (negatives "another task's video"): observation-video files of tasks other
    # than the run's, every episode of each (a single path is read as a list of one). The workflow passes
    # the robot-domain videos of every other task with the same observations (docs/training.md, VIRL).
    other_videos: tuple[str, ...] = ()
    retrain_every: int = Field(1000, ge=1)  # environment steps per policy round (between retrains)
    rollouts_kept: int = Field(20, ge=0)  # most recent complete agent episodes used as training pairs
    pretrain_steps: int = Field(500, ge=0)  # distance updates on the demo (+ other videos) before RL

    @field_validator("other_videos", mode="before")
    @classmethod
    def _path_list(cls, v: Any) -> Any:
        return () if v is None else (v,) if isinstance(v, str) else v

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
    # Worker processes that step and render a pack's pixel environments in parallel (0: in the training
    # process). Results do not depend on it; give a pack job N cores and set N - 1 here.
    env_workers: int = Field(0, ge=0)
    tensorboard: bool = False
    data: DataConfig = Field(default_factory=DataConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    virl: VirlTrainConfig = Field(default_factory=VirlTrainConfig)
    # What the agent observes: ``pixels`` (an image task's camera images) or ``state`` (the task's
    # low-dimensional state, ``info["state"]``, read by the learned state encoder; nothing is rendered).
    # None: the task's own observations. A state task has only ``state``; on an image task ``state`` is for
    # variants without observation videos or VIRL frames (those exist as images only): sac.
    observation: Literal["pixels", "state"] | None = None

    @field_validator("observation")
    @classmethod
    def _observation_fits(cls, v: str | None, info) -> str | None:
        task, agent, virl = (info.data.get(k) for k in ("task", "agent", "virl"))
        if v is None or task is None:
            return v
        if v == "pixels" and not get_task(task).pixels:
            raise ValueError(
                f"task {task!r} has state observations only: use observation=state (or leave it unset)"
            )
        if v == "state" and get_task(task).pixels:
            reads = [
                key
                for key, on in (
                    ("agent.rlv.enabled", agent is not None and agent.rlv.enabled),
                    ("agent.mem.enabled", agent is not None and agent.mem.enabled),
                    ("virl.enabled", virl is not None and virl.enabled),
                )
                if on
            ]
            if reads:
                raise ValueError(
                    f"state observations of image task {task!r} work with variant sac only: "
                    f"{' and '.join(reads)} need observation videos or demonstration frames, "
                    "which exist as images only"
                )
        return v

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
            raise UserError(f"override {key}: cannot parse value {raw!r}: {_yaml_problem(exc)}") from None
        except RecursionError:
            raise UserError(f"override {key}: value nested too deeply") from None
        if _depth_problem(value) is not None:
            raise UserError(f"override {key}: value nested more than {MAX_CONFIG_DEPTH} levels deep")
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


MAX_CONFIG_BYTES = 1 << 20  # a run config is a few hundred bytes
MAX_CONFIG_DEPTH = 32  # nesting of mappings and lists; the deepest real key has 3 levels


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: ``line L, column C: problem`` (PyYAML's own message spans several lines)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    problem = " ".join(str(problem).split())
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return problem


def _depth_problem(data: Any, limit: int = MAX_CONFIG_DEPTH) -> str | None:
    """The dotted path where ``data`` nests deeper than ``limit`` (iterative: no recursion), else None."""
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        node, depth, where = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth >= limit:
            return where or "(top level)"
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            stack.append((v, depth + 1, f"{where}.{k}" if where else str(k)))
    return None


def read_yaml_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML config file; any problem (unreadable, too big, not UTF-8 text, binary, a YAML
    error, nested too deeply, not a mapping) raises :class:`UserError` naming the file."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UserError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes; a run config is text")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"config file {path} is UTF-16 text; save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    if "\x00" in text:
        raise UserError(
            f"config file {path} is binary (NUL byte at offset {text.index(chr(0))}), not YAML text"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise UserError(f"config file {path}: YAML nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping, not {type(data).__name__}")
    where = _depth_problem(data)
    if where is not None:
        raise UserError(f"config file {path}: {where}: nested more than {MAX_CONFIG_DEPTH} levels deep")
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
            got = repr(err["input"])
            msg = f"{msg} (got {got if len(got) <= 80 else got[:77] + '...'})"
        lines.append(f"{source}: {loc}: {' '.join(msg.split())}")
    if len(lines) > 10:
        lines = [*lines[:10], f"{source}: ... and {len(lines) - 10} more problems"]
    return "; ".join(lines)


INT64_MAX = 2**63 - 1


def _number_problems(tree: Any, prefix: str = "") -> list[str]:
    """``field: problem`` for every integer outside int64 and every NaN or infinite float in ``tree``."""
    out: list[str] = []
    stack: list[tuple[str, Any]] = [(prefix, tree)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack += [(f"{key}.{k}" if key else str(k), v) for k, v in value.items()]
        elif isinstance(value, list | tuple):
            stack += [(f"{key}.{i}", v) for i, v in enumerate(value)]
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
            shown = (
                str(value) if len(str(value)) <= 30 else f"{str(value)[:12]}... ({len(str(value))} digits)"
            )
            out.append(f"{key}: integer {shown} does not fit in 64 bits (at most {INT64_MAX})")
        elif isinstance(value, float) and not math.isfinite(value):
            out.append(f"{key}: must be a finite number (got {value})")
    return sorted(out)


def resolve_config(user: dict[str, Any]) -> TrainConfig:
    """Validate a user mapping (file merged with overrides) after putting the variant preset under it.

    Beyond the models' own rules, every number of the result must be usable by numpy and torch: no
    integer outside int64, no NaN or infinite float, ``epochs x steps_per_epoch`` inside int64. Problems
    raise :class:`UserError` as ``config: field: problem; ...`` (one line). Machine-independent: see
    :func:`check_machine` for the device and memory.
    """
    where = _depth_problem(user)
    if where is not None:
        raise UserError(f"config: {where}: nested more than {MAX_CONFIG_DEPTH} levels deep")
    variant = user.get("variant")
    merged = user
    if isinstance(variant, str) and variant in VARIANTS:
        merged = deep_merge(variant_overrides(variant), user)
    try:
        cfg = TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc)) from None
    problems = _number_problems(cfg.model_dump())
    if not problems and cfg.total_steps > INT64_MAX:
        problems = [f"epochs x steps_per_epoch: {cfg.epochs} x {cfg.steps_per_epoch} does not fit in 64 bits"]
    if problems:
        raise UserError("; ".join(f"config: {p}" for p in problems[:10]))
    return cfg


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` (optional), apply ``key=value`` overrides and the variant preset, validate
    (:func:`resolve_config`; the machine is not consulted: :func:`check_machine`)."""
    user = read_yaml_file(path) if path is not None else {}
    user = deep_merge(user, parse_overrides(overrides or []))
    return resolve_config(user)


# ----------------------------------------------------------------------------------------------------
# This machine: device and memory


def check_device(device: str) -> None:
    """Raise :class:`UserError` naming ``device`` when this torch has no such device."""
    import torch

    if device in ("auto", "cpu"):
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            why = (
                "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            )
            raise UserError(
                f"config: device: {device!r} is not available here ({why}); use device=auto or cpu"
            )
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise UserError(
                f"config: device: {device!r} does not exist; this machine has {count} CUDA device(s)"
            )
        return
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise UserError("config: device: 'mps' is not available here (no Apple GPU in this torch)")
        return
    raise UserError(f"config: device: unknown device {device!r}")


def _mlp_params(widths: list[int]) -> int:
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=False))


def memory_estimate(cfg: TrainConfig) -> dict[str, int]:
    """Bytes a run allocates up front, by the config field that sets each part (a lower estimate).

    ``replay_size`` (or ``epochs x steps_per_epoch`` when the run length caps it): the interaction
    replay buffer (frames once, plus index, action, reward, flags per transition). ``agent.sac.hidden``
    and the other widths: parameters of the actor, twin critics, target critics and the other networks,
    with gradients and two Adam moments (16 bytes per parameter). ``agent.sac.batch_size`` (and the
    observation and MEM batches): one update's inputs and activations in float32. ``epochs``: the
    progress rows kept in memory and in each checkpoint.
    """
    from rlmu.data.format import task_state_space
    from rlmu.envs.metaworld_tasks import STATE_FIELDS

    spec = get_task(cfg.task)
    a = cfg.agent
    action_dim = 3  # the largest action of the tasks (drawer)
    if spec.pixels and cfg.observation != "state":
        size = cfg.image_size
        frame_bytes, obs_floats = 3 * size * size, 3 * size * size
        side, channels = size, 3
        conv_params, conv_act = 0, 0
        for c in a.encoder.channels:
            conv_params += a.encoder.kernel**2 * channels * c + c
            conv_act += c * side * side
            side, channels = max(side // a.encoder.pool, 1), c
        features = channels * side * side
        frame_slots_per_transition = 1 + 1 / spec.episode_steps
        encoder_key = "agent.encoder.channels"
    else:
        dim = task_state_space(spec.name)[0] if not spec.pixels else len(STATE_FIELDS)
        frame_bytes, obs_floats, features, conv_params, conv_act = 4 * dim, dim, dim, 0, 0
        frame_slots_per_transition = 2
        encoder_key = "agent.encoder.state_hidden"
        if a.encoder.state:  # the learned state encoder (and its target copy) in front of the heads
            conv_params = _mlp_params([dim, *a.encoder.state_hidden, a.encoder.state_features])
            conv_act = sum(a.encoder.state_hidden) + a.encoder.state_features
            features = a.encoder.state_features
    cap = cfg.replay_capacity
    replay = int(cap * (frame_bytes * frame_slots_per_transition + 32 + 4 * action_dim))

    hidden = list(a.sac.hidden)
    params = {
        "agent.sac.hidden": _mlp_params([features, *hidden, 2 * action_dim])
        + 4 * _mlp_params([features + action_dim, *hidden, 1]),
        # the encoder and its target copy (pixels: the conv layers; state: the state encoder's MLP)
        encoder_key: 2 * conv_params,
    }
    # One update's float32 inputs and activations per sample: the frames, the encoder's feature maps and
    # the MLP layers (forward and backward); the batch size times the widths is what can be too big.
    per_sample = 4 * (2 * obs_floats + 2 * conv_act + 2 * features + 8 * max(hidden))
    batches = {"agent.sac.batch_size x agent.sac.hidden": a.sac.batch_size * per_sample}
    if a.rlv.enabled:
        params["agent.rlv.inverse_hidden"] = _mlp_params([2 * features, *a.rlv.inverse_hidden, action_dim])
        params["agent.rlv.discriminator_hidden"] = _mlp_params([features, *a.rlv.discriminator_hidden, 1])
        batches["agent.rlv.obs_batch_size x agent.sac.hidden"] = a.rlv.obs_batch_size * per_sample
    if a.mem.enabled:
        h = a.mem.lstm_hidden
        params["agent.mem.lstm_hidden"] = 4 * h * (features + h + 2) * a.mem.lstm_layers + h * a.mem.n_classes
        batches["agent.mem.batch_size x agent.mem.subseq_len"] = (
            a.mem.batch_size * a.mem.subseq_len * 4 * (obs_floats + 2 * conv_act + features + 8 * h)
        )
    if cfg.virl.enabled:
        e, h = cfg.virl.frame_embedding, cfg.virl.rnn_hidden
        params["virl.rnn_hidden"] = 4 * h * (e + h + 2) + features * e
    out = {k: 16 * v for k, v in params.items()}
    out.update(batches)
    out["replay_size" if cfg.replay_size <= cfg.total_steps else "epochs x steps_per_epoch"] = replay
    out["epochs"] = cfg.epochs * 2 * 400  # one CSV row of text, in memory and in the checkpoint
    return out


def _gib(n: float) -> str:
    value, unit = (n / 2**30, "GiB") if n < 2**40 else (n / 2**40, "TiB")
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


def _blame(need: dict[str, int]) -> str:
    return max(need.items(), key=lambda kv: kv[1])[0]


def _parts(need: dict[str, int]) -> str:
    """The parts that make up at least a tenth of the total, largest first."""
    total = sum(need.values())
    big = sorted((kv for kv in need.items() if kv[1] >= total / 10), key=lambda kv: -kv[1])
    return ", ".join(f"{k}: {_gib(v)}" for k, v in big)


def check_machine(cfg: TrainConfig | list[TrainConfig], *, available: int | None = None) -> None:
    """Check a run's config (or the member configs of a seed pack, trained in one process) against this
    machine before any work: the device exists (:func:`check_device`) and the members'
    :func:`memory_estimate` together fit in the memory this process can still allocate (``available``
    bytes, by default ``rlmu.utils.io.available_memory_bytes()``; on a CUDA device the networks and
    batches are also checked against the GPU's free memory). Raises :class:`UserError` naming the field
    that needs most.
    """
    from rlmu.utils.io import available_memory_bytes

    cfgs = cfg if isinstance(cfg, list) else [cfg]
    if not cfgs:
        return
    for device in sorted({c.device for c in cfgs}):
        check_device(device)
    need: dict[str, int] = {}
    for c in cfgs:
        for k, v in memory_estimate(c).items():
            need[k] = need.get(k, 0) + v
    total = sum(need.values())
    runs = "the run needs" if len(cfgs) == 1 else f"the {len(cfgs)} runs of the pack need"
    free = available_memory_bytes() if available is None else available
    if free is not None and total > free:
        raise UserError(
            f"config: {_blame(need)}: {runs} about {_gib(total)} of memory up front "
            f"({_parts(need)}), this machine has {_gib(free)} available"
        )
    for device in sorted({c.device for c in cfgs if c.device.startswith("cuda")}):
        import torch

        on_gpu: dict[str, int] = {}
        for c in cfgs:
            if c.device == device:
                for k, v in memory_estimate(c).items():
                    if k not in ("epochs", "replay_size", "epochs x steps_per_epoch"):
                        on_gpu[k] = on_gpu.get(k, 0) + v
        gpu_free, _ = torch.cuda.mem_get_info(int(device.partition(":")[2] or 0))
        if sum(on_gpu.values()) > gpu_free:
            raise UserError(
                f"config: {_blame(on_gpu)}: networks and batches need about {_gib(sum(on_gpu.values()))} of "
                f"GPU memory ({_parts(on_gpu)}), {device} has {_gib(gpu_free)} free"
            )


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
