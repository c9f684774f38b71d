"""The workspace of a seed pack: K runs of one (task, variant) trained in lockstep in one process.

The agent (``rlmu.agent.Agent``) holds the math for the whole pack; everything with I/O, time or signals lives
here. Each member is a whole run of its own (:class:`Member`): its environments, replay buffer, observation
buffer, random-phase actions, VIRL reward, episode seeds and every random stream are derived from its seed
exactly as a run of that seed alone derives them, and it writes its own run directory (``progress.csv``,
``timing.csv``, ``run.json``, ``config.yaml``). The members' networks run together (one forward and backward
for the pack); environments step one after the other. A seed trained alone is a pack of one, so a seed's
``progress.csv`` is the same whether it trains alone or beside any other seeds (on the CPU; see
``rlmu.agent.networks`` for how the kernels are kept pack-invariant).

Faults. A member whose loss turns non-finite is recorded ``diverged`` (loss, update, env step) and stops;
the others go on. When every member has finished, the process exits 0 (all completed) or 3 (some diverged).

Exact resume. The pack's checkpoint (in the pack directory) holds every member's state. It can be taken after
any environment step (periodically at epoch ends, and on preemption at the step where the signal was seen). A
MuJoCo simulation is not serialised: every training episode is reset with a seed derived from (member seed,
episode index), and the checkpoint keeps the actions taken so far in the current episode. On resume each
member's environment is reset with that seed and the actions are replayed, which rebuilds the exact simulator
state (the last replayed observation is compared byte for byte with the stored one and a mismatch stops the
run). Evaluation episodes use their own environment, reset with seeds derived from (member seed, epoch,
episode). All other randomness (random-phase actions, replay samplers, the agent's generators) is in the
checkpoint. So a resumed member produces the same progress rows, byte for byte (throughput and wall time go
to ``timing.csv``).

VIRL (``virl.enabled``, ``rlmu.train.virl``): the reward stored for SAC is the learned-distance reward,
computed when a transition is stored; every ``virl.retrain_every`` steps each member's distance model is
retrained and its stored rewards are recomputed. Evaluation and the progress CSV keep the true task return.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlmu  # noqa: F401  (registers the tasks)
from rlmu.agent import Agent
from rlmu.errors import CheckpointError, DivergenceError, UserError
from rlmu.schema import (
    CONFIG_FILE,
    LOSS_COLUMNS,
    PROGRESS_COLUMNS,
    PROGRESS_FILE,
    TIMING_COLUMNS,
    TIMING_FILE,
)
from rlmu.seeding import (
    SEED_TAG_ACTIONS,
    SEED_TAG_EVAL_EPISODE,
    SEED_TAG_REPLAY,
    SEED_TAG_TRAIN_EPISODE,
    SEED_TAG_VIRL_INIT,
    child_seed,
)
from rlmu.tasks import get_task
from rlmu.train import (
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    COMPLETED_EXIT_CODE,
    DIVERGED_EXIT_CODE,
    PREEMPTED_EXIT_CODE,
)
from rlmu.train.checkpoint import (
    TensorSpec,
    check_tree,
    checkpoint_exists,
    load_latest_checkpoint,
    save_checkpoint,
    to_numpy_tree,
)
from rlmu.train.config import config_diff
from rlmu.train.data import build_observation_buffer
from rlmu.train.envs import EnvWorkers, step_all
from rlmu.train.record import new_record, now_iso, read_record, write_first_update, write_record
from rlmu.train.replay import ReplayBuffer, rng_state, set_rng_state
from rlmu.train.virl import VirlReward
from rlmu.utils.io import atomic_write_text, remove_leftovers

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
# Settings that may differ between the run that wrote a checkpoint and the one resuming it.
RESUMABLE_CHANGES = ("device", "tensorboard", "checkpoint_every", "env_workers")
CHECKPOINT_KIND = "pack"


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def format_cell(value: Any) -> str:
    """CSV cell: ints as-is, floats as the shortest repr that round-trips, NaN/None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    x = float(value)
    return "" if math.isnan(x) else repr(x)


def render_csv(rows: list[list[str]], columns: tuple[str, ...] = PROGRESS_COLUMNS) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue()


def _specs(tree: Any) -> Any:
    """The shapes and dtypes of a nested dict of tensors, as ``check_tree`` expects them."""
    if isinstance(tree, dict):
        return {k: _specs(v) for k, v in tree.items()}
    return TensorSpec.like(tree)


class Preempted(Exception):
    """Raised inside the loop when a preemption signal was seen (after the current step completed)."""


class PreemptFlag:
    """Remembers the first preemption signal (SIGTERM, SIGUSR1, SIGINT) once :meth:`install` ran.

    ``rlmu train`` installs it before anything else (before configs, data or checkpoints load), so a signal
    at any moment ends the process through the trainer's preemption path (exit 75), never as a kill."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        if self.signal is None:
            self.signal = signal.Signals(signum).name

    def install(self) -> PreemptFlag:
        """Handle the preemption signals from now on; adopt one that arrived while the package loaded."""

        held = rlmu.release_held_signals(deliver=False)
        for s in PREEMPT_SIGNALS:
            self._previous[s] = signal.signal(s, self._on_signal)
        if held and self.signal is None:
            self.signal = signal.Signals(held[0]).name
        return self

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


@dataclass
class PackState:
    """Counters shared by every member of the pack (they run in lockstep)."""

    env_steps: int = 0
    updates: int = 0
    epoch: int = 0  # completed epochs
    mem_pretrain_steps: int = 0
    virl_rounds: int = 0  # distance-model retrains done (after pre-training)
    epoch_time_s: float = 0.0  # wall time spent in the current epoch (summed over resumes)
    wall_time_s: float = 0.0


@dataclass
class MemberState:
    """One member's own counters and accumulators."""

    episode: int = 0  # index of the current (or next) training episode
    episode_step: int = 0  # steps taken in the current episode (0: needs a reset)
    episode_return: float = 0.0
    epoch_loss_sum: dict[str, float] = field(default_factory=dict)
    epoch_loss_count: dict[str, int] = field(default_factory=dict)
    epoch_train_returns: list[float] = field(default_factory=list)
    diverged: str | None = None  # the divergence message once the member stopped
    stopped_epoch: int = 0  # completed epochs when it stopped
    stopped_env_steps: int = 0


class Member:
    """One run of the pack: its config, run directory, environments, buffers, random streams and rows."""

    def __init__(self, trainer: Trainer, index: int, cfg, run_dir: Path):
        self.index = index
        self.cfg = cfg
        self.seed = cfg.seed
        self.run_dir = Path(run_dir)
        spec = trainer.spec
        self.obs_buffer = None
        if cfg.agent.rlv.enabled:
            self.obs_buffer = build_observation_buffer(cfg, spec)
        self.env, self.eval_env = trainer.member_envs(index)
        cap = cfg.replay_capacity
        self.replay = ReplayBuffer(
            cap,
            trainer.obs_shape,
            np.uint8 if trainer.pixels else np.float32,
            trainer.action_dim,
            episode_steps=spec.episode_steps,
            seed=child_seed(cfg.seed, SEED_TAG_REPLAY),
            # State observations are tiny: room for an episode start per transition, never an early drop.
            frame_capacity=None if trainer.pixels else 2 * cap + 1,
        )
        self.action_rng = np.random.default_rng(child_seed(cfg.seed, SEED_TAG_ACTIONS))
        self.virl = None
        if cfg.virl.enabled:
            if cap < spec.episode_steps:
                raise UserError(
                    f"replay_size: VIRL needs room for one whole episode ({spec.episode_steps} steps), "
                    f"the buffer holds {cap}"
                )
            # The distance model's initial weights come from the member's own seed.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(child_seed(cfg.seed, SEED_TAG_VIRL_INIT))
                self.virl = VirlReward(cfg, spec, self.replay, trainer.make_env, trainer.device)
        self.state = MemberState()
        self.obs = np.zeros(trainer.obs_shape, np.uint8 if trainer.pixels else np.float32)
        self.episode_actions: list[np.ndarray] = []
        self.rows: list[list[str]] = []
        self.timing_rows: list[list[str]] = []
        self.record: dict[str, Any] | None = None
        self.tb = None

    @property
    def active(self) -> bool:
        return self.state.diverged is None

    def write_csvs(self) -> None:
        atomic_write_text(self.run_dir / PROGRESS_FILE, render_csv(self.rows))
        atomic_write_text(self.run_dir / TIMING_FILE, render_csv(self.timing_rows, TIMING_COLUMNS))

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "state": asdict(self.state),
            "rows": self.rows,
            "timing_rows": self.timing_rows,
            "episode_actions": np.asarray(self.episode_actions, dtype=np.float32).reshape(
                -1, self.replay.action.shape[1]
            ),
            "replay": self.replay.state_dict(),
            "obs_buffer": self.obs_buffer.state_dict() if self.obs_buffer is not None else None,
            "virl": self.virl.state_dict() if self.virl is not None else None,
            "action_rng": rng_state(self.action_rng),
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.replay.load_state_dict(to_numpy_tree(ckpt["replay"]))
        if self.obs_buffer is not None:
            self.obs_buffer.load_state_dict(ckpt["obs_buffer"])
        if self.virl is not None:
            self.virl.load_state_dict(ckpt["virl"])  # tensors stay tensors (model and optimizer state)
        set_rng_state(self.action_rng, ckpt["action_rng"])
        self.state = MemberState(**ckpt["state"])
        self.rows = [list(r) for r in ckpt["rows"]]
        self.timing_rows = [list(r) for r in ckpt["timing_rows"]]
        self.episode_actions = list(ckpt["episode_actions"].numpy())


class Trainer:
    """Runs (or resumes) a pack of runs. ``run()`` returns the process exit code.

    Args:
        cfgs: one ``TrainConfig`` per member, equal except for ``seed``.
        run_dirs: each member's run directory.
        pack_dir: where the pack's checkpoint lives (``checkpoints/latest.pt``); default, for a single run, its
            run directory. ``Trainer(cfg, run_dir)`` trains one run.
        preempt: the process's :class:`PreemptFlag` (installed by the caller as early as possible); a new
            one is installed by ``run()`` when not given.

    Construction loads and checks the data and builds environments, agent and buffers, but writes nothing,
    so a bad dataset fails before any run directory is touched.
    """

    def __init__(
        self,
        cfgs,
        run_dirs,
        pack_dir: str | Path | None = None,
        *,
        log=None,
        progress: bool | None = None,
        preempt: PreemptFlag | None = None,
    ):
        if not isinstance(cfgs, list | tuple):  # one run: a pack of one
            cfgs, run_dirs = [cfgs], [run_dirs]
        cfgs, run_dirs = list(cfgs), [Path(d) for d in run_dirs]
        if pack_dir is None:
            if len(run_dirs) != 1:
                raise ValueError("a pack of several seeds needs a pack directory")
            pack_dir = run_dirs[0]  # a single run keeps its checkpoint in its run directory
        if not cfgs or len(cfgs) != len(run_dirs):
            raise ValueError("a pack needs one run directory per member config")
        base = cfgs[0].model_dump(mode="json")
        for c in cfgs[1:]:
            diff = [k for k in config_diff(base, c.model_dump(mode="json")) if k != "seed"]
            if diff:
                raise UserError(f"the members of a pack differ in {', '.join(diff)}: only seeds may differ")
        self.cfg = cfgs[0]
        self.seeds = [c.seed for c in cfgs]
        self.pack_dir = Path(pack_dir)
        self.ckpt_path = self.pack_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
        self.spec = get_task(self.cfg.task)
        # Before any data loads (the agent checks too).
        problem = self.cfg.agent.dead_loss(self.spec.pixels and self.cfg.observation != "state")
        if problem:
            raise UserError(problem)
        self.device = resolve_device(self.cfg.device)
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._progress = sys.stderr.isatty() if progress is None else progress
        self.preempt = preempt if preempt is not None else PreemptFlag()
        self._own_preempt = preempt is None

        if self.cfg.torch_threads > 0:
            torch.set_num_threads(self.cfg.torch_threads)
        probe = self.make_env()
        space = probe.observation_space
        self.pixels = len(space.shape) == 3
        self.obs_shape = (
            (space.shape[2], space.shape[0], space.shape[1]) if self.pixels else tuple(space.shape)
        )
        self.action_low = np.asarray(probe.action_space.low, dtype=np.float32)
        self.action_high = np.asarray(probe.action_space.high, dtype=np.float32)
        self.action_dim = int(np.prod(probe.action_space.shape))
        probe.close()

        self._workers = None
        if self.cfg.env_workers > 0 and self.pixels:
            kwargs = {"image_size": self.cfg.image_size}
            self._workers = EnvWorkers(self.cfg.env_workers, [(self.spec.env_id, kwargs)] * (2 * len(cfgs)))
        # Data first (inside Member): problems with files surface before any other work.
        try:
            self.members = [
                Member(self, i, c, d) for i, (c, d) in enumerate(zip(cfgs, run_dirs, strict=True))
            ]
        except BaseException:
            if self._workers is not None:
                self._workers.close()
            raise

        self.agent = Agent(
            self.cfg.agent,
            self.obs_shape,
            self.action_dim,
            self.device,
            seeds=self.seeds,
            task=self.spec.name,
        )
        self.state = PackState()

    # ----------------------------------------------------------------------------------------- pieces
    def member_envs(self, index: int):
        """Member ``index``'s training and evaluation environments: in this process, or held by the
        pack's environment workers (``env_workers``, pixel tasks)."""
        if self._workers is not None:
            return self._workers.env(2 * index), self._workers.env(2 * index + 1)
        return self.make_env(), self.make_env()

    def make_env(self):
        kwargs = {"image_size": self.cfg.image_size} if self.spec.pixels else {}
        if self.spec.pixels and self.cfg.observation == "state":
            kwargs["observation"] = "state"  # the state vector as observation; nothing is rendered
        return gym.make(self.spec.env_id, **kwargs)

    def _to_buffer_obs(self, obs: np.ndarray) -> np.ndarray:
        if self.pixels:
            return np.ascontiguousarray(np.asarray(obs, dtype=np.uint8).transpose(2, 0, 1))
        return np.asarray(obs, dtype=np.float32)

    @property
    def active(self) -> list[Member]:
        return [m for m in self.members if m.active]

    def _check_preempt(self) -> None:
        if self.preempt.signal is not None:
            raise Preempted(self.preempt.signal)

    # ------------------------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        elapsed = time.monotonic() - self._session_t0
        state = asdict(self.state)
        state["wall_time_s"] = self._wall_base + elapsed
        state["epoch_time_s"] = self.state.epoch_time_s + (time.monotonic() - self._epoch_t0)
        payload = {
            "kind": CHECKPOINT_KIND,
            "seeds": self.seeds,
            "config": self.cfg.model_dump(mode="json"),
            "trainer": state,
            "members": [m.state_dict() for m in self.members],
            "agent": self.agent.state_dict(),
        }
        save_checkpoint(self.ckpt_path, payload)

    def _load(self) -> dict[str, Any] | None:
        """The pack's checkpoint (the latest generation that passes its checksum and fits this pack, else the
        previous one), or None. A pack checkpoint of other seeds or another config is a ``UserError``; when
        no generation can be used, a ``UserError`` names each file and why. Both are raised before any run
        directory is written, so the runs' status is left as it was."""
        if not checkpoint_exists(self.ckpt_path):
            return None
        try:
            ckpt, used, warnings = load_latest_checkpoint(self.ckpt_path, self._validate_checkpoint)
        except CheckpointError as exc:
            raise UserError(
                f"{exc}; the runs were left as they were (use --restart to train them anew)"
            ) from None
        for w in warnings:
            self._log(f"warning: {w}; resuming from {used}")
        if list(ckpt["seeds"]) != self.seeds:
            raise UserError(
                f"{used} holds the pack of seeds {list(ckpt['seeds'])}, this pack is {self.seeds}: "
                "train each seed set in its own pack directory (or use --restart)"
            )
        self._check_same_config(ckpt["config"])
        return ckpt

    def _validate_checkpoint(self, ckpt: dict[str, Any], path: Path) -> None:
        """What ``_restore`` relies on, checked before anything is restored (``load_latest_checkpoint`` falls
        back to the previous generation when this raises). Another seed set or config is left to ``_load``:
        it is the user's mistake, not a damaged file."""
        if ckpt.get("kind") != CHECKPOINT_KIND or "seeds" not in ckpt:
            raise CheckpointError(f"{path}: not a seed-pack checkpoint")
        for key in ("config", "trainer", "members", "agent"):
            if key not in ckpt:
                raise CheckpointError(f"{path}: checkpoint has no {key!r}")
        if list(ckpt["seeds"]) != self.seeds:
            return
        if not isinstance(ckpt["members"], list) or len(ckpt["members"]) != len(self.members):
            raise CheckpointError(f"{path}: does not hold one state per member of the pack {self.seeds}")
        expected = self.agent.state_dict()
        agent = ckpt["agent"] if isinstance(ckpt["agent"], dict) else {}
        want = {"networks": _specs(expected["networks"]), "log_alpha": TensorSpec.like(expected["log_alpha"])}
        got = {"networks": agent.get("networks"), "log_alpha": agent.get("log_alpha")}
        check_tree({"agent": want}, {"agent": got}, path)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        try:
            self.agent.load_state_dict(ckpt["agent"])
            for m, state in zip(self.members, ckpt["members"], strict=True):
                m.load_state_dict(state)
            self.state = PackState(**ckpt["trainer"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise UserError(f"{self.ckpt_path}: checkpoint does not fit this pack ({exc})") from None

    def _replay_current_episode(self, m: Member) -> None:
        """Rebuild a member's training env mid-episode: reset with the episode's seed, replay its actions."""
        if m.state.episode_step == 0:
            return
        obs, _ = m.env.reset(seed=child_seed(m.seed, SEED_TAG_TRAIN_EPISODE, m.state.episode))
        for a in m.episode_actions:
            obs, *_ = m.env.step(a)
        obs = self._to_buffer_obs(obs)
        if not np.array_equal(obs, m.replay.last_frame):
            raise RuntimeError(
                "cannot resume exactly: replaying the current episode's actions did not reproduce the stored "
                "observation (the environment is not deterministic given its seed and actions)"
            )
        m.obs = obs

    def _check_same_config(self, saved: dict[str, Any]) -> None:
        now = self.cfg.model_dump(mode="json")
        diff = [k for k in config_diff(saved, now) if k not in RESUMABLE_CHANGES]
        if diff:
            raise UserError(
                f"{self.ckpt_path} is a checkpoint of a run with a different config ({', '.join(diff)}); "
                "use another directory or --restart"
            )

    # ---------------------------------------------------------------------------------------- records
    def _write_record(self, m: Member, status: str, *, error: str | None = None) -> None:
        r = m.record
        r["status"] = status
        r["error"] = error
        if m.active:
            r["epochs_done"] = self.state.epoch
            r["env_steps"] = self.state.env_steps
        else:
            r["epochs_done"] = m.state.stopped_epoch
            r["env_steps"] = m.state.stopped_env_steps
        r["wall_time_s"] = round(self._wall_base + time.monotonic() - self._session_t0, 3)
        r["finished_at"] = now_iso() if status != "running" else None
        write_record(m.run_dir, r)

    def _diverge(self, m: Member, loss_name: str, value: float, where: str, step: int) -> None:
        """Record that member ``m`` diverged; it stops and the others go on."""
        msg = f"diverged: {loss_name} = {value} at {where} {step} (env step {self.state.env_steps})"
        m.state.diverged = msg
        m.state.stopped_epoch = self.state.epoch
        m.state.stopped_env_steps = self.state.env_steps
        self.agent.active[m.index] = False
        self._write_record(m, "diverged", error=msg)
        self._log(f"seed {m.seed}: {msg}")

    # ---------------------------------------------------------------------------------------- the run
    def run(self) -> int:
        if self._own_preempt:
            self.preempt.install()
        try:
            return self._run()
        finally:
            if self._own_preempt:
                self.preempt.restore()
            if self._workers is not None:
                self._workers.close()
            for m in self.members:
                if m.tb is not None:
                    m.tb.close()

    def _run(self) -> int:
        cfg = self.cfg
        self._session_t0 = time.monotonic()
        self._epoch_t0 = self._session_t0
        ckpt = self._load()
        old = {m.seed: read_record(m.run_dir) for m in self.members}
        if ckpt is not None:
            self._restore(ckpt)
        if self.preempt.signal is not None:  # before any work: nothing was written, nothing to save
            self._log(f"preempted by {self.preempt.signal} before training started; nothing was written")
            return PREEMPTED_EXIT_CODE
        self.pack_dir.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.pack_dir / CHECKPOINT_DIR)
        # Wall time counts every session, also work lost after the last checkpoint.
        self._wall_base = max(
            [self.state.wall_time_s] + [float((o or {}).get("wall_time_s") or 0.0) for o in old.values()]
        )
        for m in self.members:
            m.run_dir.mkdir(parents=True, exist_ok=True)
            remove_leftovers(m.run_dir)
            record = new_record(m.cfg, self.device)
            record["pack"] = list(self.seeds)
            prev = old[m.seed]
            if prev is not None and ckpt is not None:
                record["started_at"] = prev.get("started_at") or record["started_at"]
            m.record = record
            atomic_write_text(m.run_dir / CONFIG_FILE, m.cfg.to_yaml())
            # Rewrite the CSVs from the checkpoint's rows: rows written after the checkpoint are dropped.
            m.write_csvs()
            if m.active:
                self._write_record(m, "running")
            else:
                self._write_record(m, "diverged", error=m.state.diverged)
        if ckpt is not None:
            self._log(
                f"resuming pack {self.seeds} at epoch {self.state.epoch}, env step {self.state.env_steps}"
            )
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            for m in self.active:
                m.tb = SummaryWriter(str(m.run_dir / "tensorboard"), purge_step=self.state.epoch + 1)

        try:
            self._pretrain_mem()
            self._pretrain_virl()
            self._train()
        except Preempted as exc:
            self.save()
            for m in self.active:
                self._write_record(m, "preempted")
            self._log(f"preempted by {exc}: checkpoint written at env step {self.state.env_steps}")
            return PREEMPTED_EXIT_CODE
        except Exception as exc:
            for m in self.active:
                self._write_record(m, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        for m in self.active:
            self._write_record(m, "completed")
        done = [m.seed for m in self.active]
        self._log(
            f"completed {cfg.epochs} epochs: seeds {done}"
            + (f"; diverged: {self._diverged()}" if self._diverged() else "")
        )
        return DIVERGED_EXIT_CODE if self._diverged() else COMPLETED_EXIT_CODE

    def _diverged(self) -> list[int]:
        return [m.seed for m in self.members if not m.active]

    # ---------------------------------------------------------------------------------------- pre-training
    def _pretrain(self, what: str, total: int, done, step, log_every: int) -> None:
        """One pre-training loop (MEM, VIRL): ``step()`` makes one step of every active member and returns
        its loss values, until ``done()`` reaches ``total``; preemptible after every step."""
        if done() >= total or not self.active:
            return
        self._log(f"{what}: {total - done()} steps")
        losses: list[float] = []
        while done() < total and self.active:
            losses += step()
            n = done()
            if losses and (n % max(1, log_every) == 0 or n == total):
                self._log(f"{what} step {n}/{total}: loss {np.mean(losses):.4f}")
                losses = []
            self._check_preempt()
        self.state.epoch_time_s = 0.0  # throughput of epoch 1 counts RL steps only
        self._epoch_t0 = time.monotonic()

    def _pretrain_mem(self) -> None:
        """Encoder + MEM pre-training of the whole pack (RLMU), ``mem.pretrain_steps`` steps."""
        mem, st = self.cfg.agent.mem, self.state
        if not mem.enabled:
            return

        def step() -> list[float]:
            batch = self._stack(
                [m.obs_buffer.sample_mem(mem.batch_size, mem.subseq_len, mem.n_classes) for m in self.members]
            )
            result = self.agent.pretrain_mem_step(batch)
            for k, name, value in result.diverged:
                self._diverge(self.members[k], name, value, "MEM pre-training step", st.mem_pretrain_steps)
            st.mem_pretrain_steps += 1
            return [float(result.values["loss_mem"][m.index]) for m in self.active]

        self._pretrain(
            "MEM pre-training",
            mem.pretrain_steps,
            lambda: st.mem_pretrain_steps,
            step,
            mem.pretrain_steps // 10,
        )

    def _virl_call(self, m: Member, fn, *args):
        """Run one member's VIRL step; a non-finite distance loss makes that member diverge."""
        try:
            return fn(*args)
        except DivergenceError as exc:
            self._diverge(m, exc.loss_name, exc.value, "VIRL distance update", exc.update_step)
            return None

    def _pretrain_virl(self) -> None:
        """Each member's distance model on its demonstration (+ other videos), ``virl.pretrain_steps``."""
        if not self.cfg.virl.enabled:
            return
        total = self.cfg.virl.pretrain_steps
        if self.active and self.active[0].virl.pretrain_steps_done < total:
            self._log(f"VIRL demonstration: {self.active[0].virl.demo_description}")

        def step() -> list[float]:
            out = [self._virl_call(m, m.virl.pretrain_step) for m in self.active]
            return [o["loss_distance"] for o in out if o is not None]

        def done() -> int:
            return min((m.virl.pretrain_steps_done for m in self.active), default=total)

        self._pretrain("VIRL distance pre-training", total, done, step, total // 5)

    def _virl_round(self) -> None:
        """Retrain each member's distance model and recompute its stored rewards (between policy rounds)."""
        self.state.virl_rounds += 1
        steps = self.cfg.virl.train_steps
        for m in self.active:
            st = m.state
            losses = self._virl_call(m, m.virl.retrain, st.episode, st.episode_step > 0)
            # The CSV's loss_distance is the mean over the epoch's distance updates.
            if losses is not None and steps > 0 and "loss_distance" in losses:
                sums, counts = st.epoch_loss_sum, st.epoch_loss_count
                sums["loss_distance"] = sums.get("loss_distance", 0.0) + losses["loss_distance"] * steps
                counts["loss_distance"] = counts.get("loss_distance", 0) + steps

    # ------------------------------------------------------------------------------------------- RL
    def _train(self) -> None:
        cfg = self.cfg
        total = cfg.total_steps
        for m in self.active:
            self._replay_current_episode(m)
        bar = None
        if self._progress:
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                initial=self.state.env_steps,
                unit="step",
                desc=f"{cfg.variant}/{cfg.task}/seeds {','.join(map(str, self.seeds))}",
            )
        try:
            while self.state.env_steps < total and self.active:
                self._env_step()
                if bar is not None:
                    bar.update(1)
                steps = self.state.env_steps
                if self.virl_enabled and steps % cfg.virl.retrain_every == 0 and steps < total:
                    self._virl_round()
                if steps % cfg.steps_per_epoch == 0:
                    self._end_epoch()
                self._check_preempt()
        finally:
            if bar is not None:
                bar.close()

    @property
    def virl_enabled(self) -> bool:
        return self.cfg.virl.enabled

    def _env_step(self) -> None:
        cfg, st = self.cfg, self.state
        active = self.active
        for m in active:
            if m.state.episode_step == 0:
                raw, _ = m.env.reset(seed=child_seed(m.seed, SEED_TAG_TRAIN_EPISODE, m.state.episode))
                m.obs = self._to_buffer_obs(raw)
                m.replay.start_episode(m.obs, m.state.episode)
                if m.virl is not None:
                    m.virl.begin_episode(m.obs)
                m.episode_actions = []
                m.state.episode_return = 0.0
        if st.env_steps < cfg.random_steps:
            actions = {
                m.index: m.action_rng.uniform(self.action_low, self.action_high).astype(np.float32)
                for m in active
            }
        else:
            batch = self.agent.act(np.stack([m.obs for m in self.members]), deterministic=False)
            actions = {m.index: batch[m.index] for m in active}
        results = step_all([m.env for m in active], [actions[m.index] for m in active])
        for m, (raw, reward, terminated, truncated, _) in zip(active, results, strict=True):
            action = actions[m.index]
            next_obs = self._to_buffer_obs(raw)
            ms = m.state
            ms.episode_step += 1
            # The task's episode length is a time-out (bootstrapped), also if an env forgot to truncate.
            truncated = bool(truncated) or ms.episode_step >= self.spec.episode_steps
            # VIRL: SAC learns from the distance to the demonstration, not from the task's reward.
            stored = m.virl.step_reward(next_obs, ms.episode_step) if m.virl is not None else reward
            m.replay.add(action, float(stored), next_obs, bool(terminated))
            m.episode_actions.append(action)
            ms.episode_return += float(reward)
            m.obs = next_obs
            if terminated or truncated:
                ms.epoch_train_returns.append(ms.episode_return)
                ms.episode += 1
                ms.episode_step = 0
        st.env_steps += 1
        if st.env_steps >= max(cfg.random_steps, 1):
            for _ in range(cfg.updates_per_step):
                if self.active:
                    self._update()

    @staticmethod
    def _stack(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.stack([b[k] for b in batches]) for k in batches[0]}

    def _update(self) -> None:
        a = self.cfg.agent
        ms = self.members
        batch = self._stack([m.replay.sample(a.sac.batch_size) for m in ms])
        obs_batch = paired = mem_batch = None
        if a.rlv.enabled:
            obs_batch = self._stack([m.obs_buffer.sample(a.rlv.obs_batch_size) for m in ms])
            if a.rlv.paired:
                paired = self._stack([m.obs_buffer.sample_paired(a.rlv.obs_batch_size) for m in ms])
        if self.agent.mem_due():
            mem_batch = self._stack(
                [m.obs_buffer.sample_mem(a.mem.batch_size, a.mem.subseq_len, a.mem.n_classes) for m in ms]
            )
        update_index = self.agent.update_step
        result = self.agent.update(batch, obs_batch=obs_batch, paired=paired, mem_batch=mem_batch)
        self.state.updates += 1
        for k, name, value in result.diverged:
            self._diverge(self.members[k], name, value, "update", update_index)
        if result.encoder_grad_norms:  # the first update: each loss's gradient on the encoder
            scales = self.agent.loss_scales
            for m in self.active:
                rows = [(n, scales[n], v[m.index]) for n, v in result.encoder_grad_norms.items()]
                write_first_update(m.run_dir, rows)
        for m in self.active:
            sums, counts = m.state.epoch_loss_sum, m.state.epoch_loss_count
            for key, values in result.values.items():
                if key in LOSS_COLUMNS:
                    sums[key] = sums.get(key, 0.0) + float(values[m.index])
                    counts[key] = counts.get(key, 0) + 1

    # ------------------------------------------------------------------------------------ evaluation
    def evaluate(self, epoch: int) -> dict[int, tuple[float, float, float]]:
        """Per active member: mean and std of the return and the success rate of ``eval_episodes``
        deterministic episodes. The members' episodes run side by side, one batched action per step."""
        active = self.active
        returns = {m.index: [] for m in active}
        successes = {m.index: [] for m in active}
        for i in range(self.cfg.eval_episodes):
            obs = [m.obs for m in self.members]
            running = {}
            for m in active:
                raw, _ = m.eval_env.reset(seed=child_seed(m.seed, SEED_TAG_EVAL_EPISODE, epoch, i))
                obs[m.index] = self._to_buffer_obs(raw)
                running[m.index] = [0.0, False]
            for _ in range(self.spec.episode_steps):
                if not running:
                    break
                actions = self.agent.act(np.stack(obs), deterministic=True)
                ks = list(running)
                results = step_all([self.members[k].eval_env for k in ks], [actions[k] for k in ks])
                for k, (raw, reward, terminated, truncated, info) in zip(ks, results, strict=True):
                    obs[k] = self._to_buffer_obs(raw)
                    running[k][0] += float(reward)
                    running[k][1] = running[k][1] or bool(info.get("success", False))
                    if terminated or truncated:
                        returns[k].append(running[k][0])
                        successes[k].append(running[k][1])
                        del running[k]
            for k, (ret, success) in running.items():
                returns[k].append(ret)
                successes[k].append(success)
        return {
            k: (float(np.mean(returns[k])), float(np.std(returns[k])), float(np.mean(successes[k])))
            for k in returns
        }

    def _end_epoch(self) -> None:
        cfg, st = self.cfg, self.state
        epoch = st.epoch + 1
        scores = self.evaluate(epoch)
        now = time.monotonic()
        epoch_time = st.epoch_time_s + (now - self._epoch_t0)
        wall = self._wall_base + (now - self._session_t0)
        for m in self.active:
            ms = m.state
            mean, std, success = scores[m.index]
            losses = {
                k: ms.epoch_loss_sum[k] / ms.epoch_loss_count[k] if ms.epoch_loss_count.get(k) else math.nan
                for k in LOSS_COLUMNS
            }
            train_returns = ms.epoch_train_returns
            values = {
                "epoch": epoch,
                "env_steps": st.env_steps,
                "eval_return_mean": mean,
                "eval_return_std": std,
                "eval_success_rate": success,
                "train_return_mean": float(np.mean(train_returns)) if train_returns else math.nan,
                **losses,
                "updates": st.updates,
                "steps_per_second": cfg.steps_per_epoch / epoch_time if epoch_time > 0 else math.nan,
                "wall_time_s": wall,
            }
            m.rows.append([format_cell(values[c]) for c in PROGRESS_COLUMNS])
            m.timing_rows.append([format_cell(values[c]) for c in TIMING_COLUMNS])
            ms.epoch_loss_sum, ms.epoch_loss_count, ms.epoch_train_returns = {}, {}, []
            if m.tb is not None:
                for k, v in values.items():
                    if k != "epoch" and isinstance(v, float) and not math.isnan(v):
                        m.tb.add_scalar(k, v, epoch)
                m.tb.flush()
        st.epoch = epoch
        st.epoch_time_s = 0.0
        self._epoch_t0 = time.monotonic()
        for m in self.active:
            m.write_csvs()
            self._write_record(m, "running")
        if not self._progress or not sys.stderr.isatty():
            for m in self.active:
                mean, std, success = scores[m.index]
                self._log(
                    f"seed {m.seed} epoch {epoch}/{cfg.epochs} steps {st.env_steps} eval return {mean:.2f} "
                    f"+- {std:.2f} success {success:.2f} ({cfg.steps_per_epoch / epoch_time:.1f} steps/s per seed)"
                )
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            self.save()
