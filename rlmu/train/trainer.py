"""The workspace of one run: environment, replay, loop, evaluation, progress CSV, run record, checkpoints.

The agent (``rlmu.agent.Agent``) holds the math; everything with I/O, time or signals lives here.

Exact resume. A checkpoint can be taken after any environment step (periodically at epoch ends, and on
preemption at the step where the signal was seen). A MuJoCo simulation is not serialised: instead every
training episode is reset with a seed derived from (run seed, episode index), and the checkpoint keeps
the actions taken so far in the current episode. On resume the environment is reset with that seed and
the actions are replayed, which rebuilds the exact simulator state (the environments are deterministic
given seed and actions; the last replayed observation is compared byte for byte with the stored one and a
mismatch stops the run). Evaluation episodes use their own environment, reset with seeds derived from
(run seed, epoch, episode). All other randomness (random-phase actions, replay samplers, the agent's
torch generator, the global torch / numpy / Python generators) is in the checkpoint. So a resumed run
produces the same progress rows, byte for byte (throughput and wall time go to ``timing.csv``).

VIRL (``virl.enabled``, ``rlmu.train.virl``): the reward stored for SAC is the learned-distance reward,
computed when a transition is stored; every ``virl.retrain_every`` steps the distance model is retrained and
all stored rewards are recomputed. Evaluation and the progress CSV keep the true task return.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

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
from rlmu.train.checkpoint import global_rng_state, load_checkpoint, save_checkpoint, set_global_rng_state
from rlmu.train.record import new_record, now_iso, read_record, write_record
from rlmu.train.replay import ReplayBuffer, rng_state, set_rng_state
from rlmu.utils.io import atomic_write_text

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
# Settings that may differ between the run that wrote a checkpoint and the one resuming it.
RESUMABLE_CHANGES = ("device", "tensorboard", "checkpoint_every")


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


class Preempted(Exception):
    """Raised inside the loop when a preemption signal was seen (after the current step completed)."""


class Trainer:
    """Runs (or resumes) one training run in ``run_dir``. ``run()`` returns the process exit code.

    Construction loads and checks the data and builds env, agent and buffers, but writes nothing, so a
    bad dataset fails before the run directory is touched.
    """

    def __init__(self, cfg, run_dir: str | Path, *, log=None, progress: bool | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.ckpt_path = self.run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
        self.spec = get_task(cfg.task)
        self.device = resolve_device(cfg.device)
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._progress = sys.stderr.isatty() if progress is None else progress
        self._preempt_signal: str | None = None

        # Data first: problems with files surface before any other work.
        self.obs_buffer = None
        if cfg.agent.rlv.enabled:
            from rlmu.train.data import build_observation_buffer

            self.obs_buffer = build_observation_buffer(cfg, self.spec)

        if cfg.torch_threads > 0:
            torch.set_num_threads(cfg.torch_threads)
        # Global generators: the agent's initial weights come from torch's global RNG.
        import random

        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)

        self.env = self._make_env()
        self.eval_env = self._make_env()
        space = self.env.observation_space
        self.pixels = len(space.shape) == 3
        self.obs_shape = (
            (space.shape[2], space.shape[0], space.shape[1]) if self.pixels else tuple(space.shape)
        )
        self.action_low = np.asarray(self.env.action_space.low, dtype=np.float32)
        self.action_high = np.asarray(self.env.action_space.high, dtype=np.float32)
        self.action_dim = int(np.prod(self.env.action_space.shape))

        from rlmu.agent import Agent

        self.agent = Agent(cfg.agent, self.obs_shape, self.action_dim, self.device)
        cap = cfg.replay_capacity
        self.replay = ReplayBuffer(
            cap,
            self.obs_shape,
            np.uint8 if self.pixels else np.float32,
            self.action_dim,
            episode_steps=self.spec.episode_steps,
            seed=child_seed(cfg.seed, SEED_TAG_REPLAY),
            # State observations are tiny: room for an episode start per transition, never an early drop.
            frame_capacity=None if self.pixels else 2 * cap + 1,
        )
        self.action_rng = np.random.default_rng(child_seed(cfg.seed, SEED_TAG_ACTIONS))
        self.virl = None
        if cfg.virl.enabled:
            from rlmu.errors import UserError
            from rlmu.train.virl import VirlReward

            if cap < self.spec.episode_steps:
                raise UserError(
                    f"replay_size: VIRL needs room for one whole episode ({self.spec.episode_steps} steps), "
                    f"the buffer holds {cap}"
                )
            self.virl = VirlReward(cfg, self.spec, self.replay, self._make_env, self.device)
        self.state = self._fresh_state()
        self.episode_actions: list[np.ndarray] = []
        self.rows: list[list[str]] = []
        self.timing_rows: list[list[str]] = []
        self.record: dict[str, Any] | None = None
        self._tb = None

    # ----------------------------------------------------------------------------------------- pieces
    def _make_env(self):
        import gymnasium as gym

        import rlmu  # noqa: F401  (registers the tasks)

        kwargs = {"image_size": self.cfg.image_size} if self.spec.pixels else {}
        return gym.make(self.spec.env_id, **kwargs)

    def _to_buffer_obs(self, obs: np.ndarray) -> np.ndarray:
        if self.pixels:
            return np.ascontiguousarray(np.asarray(obs, dtype=np.uint8).transpose(2, 0, 1))
        return np.asarray(obs, dtype=np.float32)

    @staticmethod
    def _fresh_state() -> dict[str, Any]:
        return {
            "env_steps": 0,
            "updates": 0,
            "epoch": 0,  # completed epochs
            "episode": 0,  # index of the current (or next) training episode
            "episode_step": 0,  # steps taken in the current episode (0: needs a reset)
            "episode_return": 0.0,
            "mem_pretrain_steps": 0,
            "virl_rounds": 0,  # distance-model retrains done (after pre-training)
            "epoch_loss_sum": {},
            "epoch_loss_count": {},
            "epoch_train_returns": [],
            "epoch_time_s": 0.0,  # wall time spent in the current epoch (summed over resumes)
            "wall_time_s": 0.0,
        }

    def _write_csvs(self) -> None:
        atomic_write_text(self.run_dir / PROGRESS_FILE, render_csv(self.rows))
        atomic_write_text(self.run_dir / TIMING_FILE, render_csv(self.timing_rows, TIMING_COLUMNS))

    # ------------------------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        elapsed = time.monotonic() - self._session_t0
        state = dict(self.state)
        state["wall_time_s"] = self._wall_base + elapsed
        state["epoch_time_s"] = self.state["epoch_time_s"] + (time.monotonic() - self._epoch_t0)
        payload = {
            "config": self.cfg.model_dump(mode="json"),
            "trainer": state,
            "rows": self.rows,
            "timing_rows": self.timing_rows,
            "episode_actions": np.asarray(self.episode_actions, dtype=np.float32).reshape(
                -1, self.action_dim
            ),
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "obs_buffer": self.obs_buffer.state_dict() if self.obs_buffer is not None else None,
            "virl": self.virl.state_dict() if self.virl is not None else None,
            "action_rng": rng_state(self.action_rng),
            "global_rng": global_rng_state(),
        }
        save_checkpoint(self.ckpt_path, payload)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        from rlmu.train.checkpoint import to_numpy_tree

        self.agent.load_state_dict(ckpt["agent"])
        self.replay.load_state_dict(to_numpy_tree(ckpt["replay"]))
        if self.obs_buffer is not None:
            self.obs_buffer.load_state_dict(ckpt["obs_buffer"])
        if self.virl is not None:
            self.virl.load_state_dict(ckpt["virl"])  # tensors stay tensors (model and optimizer state)
        set_rng_state(self.action_rng, ckpt["action_rng"])
        set_global_rng_state(ckpt["global_rng"])
        self.state = dict(ckpt["trainer"])
        self.rows = [list(r) for r in ckpt["rows"]]
        self.timing_rows = [list(r) for r in ckpt["timing_rows"]]
        self.episode_actions = list(ckpt["episode_actions"].numpy())

    def _replay_current_episode(self) -> np.ndarray | None:
        """Rebuild the training env's state mid-episode: reset with the episode's seed, replay its actions."""
        if self.state["episode_step"] == 0:
            return None
        obs, _ = self.env.reset(seed=child_seed(self.cfg.seed, SEED_TAG_TRAIN_EPISODE, self.state["episode"]))
        for a in self.episode_actions:
            obs, *_ = self.env.step(a)
        obs = self._to_buffer_obs(obs)
        if not np.array_equal(obs, self.replay.last_frame):
            raise RuntimeError(
                "cannot resume exactly: replaying the current episode's actions did not reproduce the stored "
                "observation (the environment is not deterministic given its seed and actions)"
            )
        return obs

    # ---------------------------------------------------------------------------------------- signals
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._preempt_signal = signal.Signals(signum).name

    def _check_preempt(self) -> None:
        if self._preempt_signal is not None:
            raise Preempted(self._preempt_signal)

    # ---------------------------------------------------------------------------------------- the run
    def run(self) -> int:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        old = read_record(self.run_dir)
        resumed = False
        if self.ckpt_path.exists():
            ckpt = load_checkpoint(self.ckpt_path)
            self._check_same_config(ckpt["config"])
            self._restore(ckpt)
            resumed = True
        self._session_t0 = time.monotonic()
        self._epoch_t0 = self._session_t0
        # Wall time counts every session, also work lost after the last checkpoint.
        self._wall_base = max(self.state["wall_time_s"], float((old or {}).get("wall_time_s") or 0.0))
        record = new_record(cfg, self.device)
        if old is not None and resumed:
            record["started_at"] = old.get("started_at") or record["started_at"]
        self.record = record
        atomic_write_text(self.run_dir / CONFIG_FILE, cfg.to_yaml())
        # Rewrite the CSVs from the checkpoint's rows: rows written after the checkpoint are dropped.
        self._write_csvs()
        self._write_record("running")
        if resumed:
            self._log(
                f"resuming {self.run_dir} at epoch {self.state['epoch']}, env step {self.state['env_steps']}"
            )
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.state["epoch"] + 1)

        previous = {s: signal.signal(s, self._on_signal) for s in PREEMPT_SIGNALS}
        try:
            self._pretrain_mem()
            self._pretrain_virl()
            self._train()
        except Preempted as exc:
            self.save()
            self._write_record("preempted", error=None)
            self._log(f"preempted by {exc}: checkpoint written at env step {self.state['env_steps']}")
            return PREEMPTED_EXIT_CODE
        except Exception as exc:
            from rlmu.agent import DivergenceError

            if isinstance(exc, DivergenceError):
                where = (
                    "MEM pre-training step"
                    if self.state["mem_pretrain_steps"] < cfg.agent.mem.pretrain_steps
                    and cfg.agent.mem.enabled
                    else "VIRL distance update"
                    if exc.loss_name == "loss_distance"
                    else "update"
                )
                msg = f"diverged: {exc.loss_name} = {exc.value} at {where} {exc.update_step} (env step {self.state['env_steps']})"
                self._write_record("diverged", error=msg)
                self._log(msg)
                return DIVERGED_EXIT_CODE
            self._write_record("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            if self._tb is not None:
                self._tb.close()
        self._write_record("completed", finished=True)
        self._log(f"completed {cfg.epochs} epochs in {self.run_dir}")
        return COMPLETED_EXIT_CODE

    def _check_same_config(self, saved: dict[str, Any]) -> None:
        from rlmu.errors import UserError
        from rlmu.train.config import config_diff

        now = self.cfg.model_dump(mode="json")
        if "virl" not in saved and not self.cfg.virl.enabled:
            saved = {**saved, "virl": now["virl"]}  # checkpoints from before the VIRL section existed
        diff = [k for k in config_diff(saved, now) if k not in RESUMABLE_CHANGES]
        if diff:
            raise UserError(
                f"{self.run_dir} holds a checkpoint of a run with a different config ({', '.join(diff)}); "
                "use another --run-dir or --restart"
            )

    def _write_record(self, status: str, *, error: str | None = None, finished: bool = False) -> None:
        r = self.record
        r["status"] = status
        r["error"] = error
        r["epochs_done"] = self.state["epoch"]
        r["env_steps"] = self.state["env_steps"]
        r["wall_time_s"] = round(self._wall_base + time.monotonic() - self._session_t0, 3)
        r["finished_at"] = now_iso() if finished or status != "running" else None
        write_record(self.run_dir, r)

    # ------------------------------------------------------------------------------------ MEM pre-training
    def _pretrain_mem(self) -> None:
        mem = self.cfg.agent.mem
        if not mem.enabled or self.state["mem_pretrain_steps"] >= mem.pretrain_steps:
            return
        self._log(f"MEM pre-training: {mem.pretrain_steps - self.state['mem_pretrain_steps']} steps")
        losses = []
        while self.state["mem_pretrain_steps"] < mem.pretrain_steps:
            batch = self.obs_buffer.sample_mem(mem.batch_size, mem.subseq_len, mem.n_classes)
            losses.append(self.agent.pretrain_mem_step(batch)["loss_mem"])
            self.state["mem_pretrain_steps"] += 1
            n = self.state["mem_pretrain_steps"]
            if n % max(1, mem.pretrain_steps // 10) == 0 or n == mem.pretrain_steps:
                self._log(f"MEM pre-training step {n}/{mem.pretrain_steps}: loss_mem {np.mean(losses):.4f}")
                losses = []
            self._check_preempt()
        self.state["epoch_time_s"] = 0.0  # throughput of epoch 1 counts RL steps only
        self._epoch_t0 = time.monotonic()

    # ----------------------------------------------------------------------------------- VIRL distance
    def _pretrain_virl(self) -> None:
        v = self.virl
        if v is None or v.pretrain_steps_done >= self.cfg.virl.pretrain_steps:
            return
        n_total = self.cfg.virl.pretrain_steps
        self._log(f"VIRL demonstration: {v.demo_description}")
        self._log(f"VIRL distance pre-training: {n_total - v.pretrain_steps_done} steps")
        losses = []
        while v.pretrain_steps_done < n_total:
            losses.append(v.pretrain_step()["loss_distance"])
            n = v.pretrain_steps_done
            if n % max(1, n_total // 5) == 0 or n == n_total:
                self._log(f"VIRL pre-training step {n}/{n_total}: loss_distance {np.mean(losses):.4f}")
                losses = []
            self._check_preempt()
        self.state["epoch_time_s"] = 0.0  # throughput of epoch 1 counts RL steps only
        self._epoch_t0 = time.monotonic()

    def _virl_round(self) -> None:
        """Retrain the distance model and recompute every stored reward (between policy rounds)."""
        st = self.state
        losses = self.virl.retrain(st["episode"], in_progress=st["episode_step"] > 0)
        st["virl_rounds"] += 1
        # The CSV's loss_distance is the mean over the epoch's distance updates.
        steps = self.cfg.virl.train_steps
        if steps > 0 and "loss_distance" in losses:
            sums, counts = st["epoch_loss_sum"], st["epoch_loss_count"]
            sums["loss_distance"] = sums.get("loss_distance", 0.0) + losses["loss_distance"] * steps
            counts["loss_distance"] = counts.get("loss_distance", 0) + steps

    # ------------------------------------------------------------------------------------------- RL
    def _train(self) -> None:
        cfg = self.cfg
        total = cfg.total_steps
        obs = self._replay_current_episode()
        bar = None
        if self._progress:
            from tqdm import tqdm

            bar = tqdm(
                total=total,
                initial=self.state["env_steps"],
                unit="step",
                desc=f"{cfg.variant}/{cfg.task}/s{cfg.seed}",
            )
        try:
            while self.state["env_steps"] < total:
                obs = self._env_step(obs)
                if bar is not None:
                    bar.update(1)
                steps = self.state["env_steps"]
                if self.virl is not None and steps % cfg.virl.retrain_every == 0 and steps < total:
                    self._virl_round()
                if self.state["env_steps"] % cfg.steps_per_epoch == 0:
                    self._end_epoch()
                self._check_preempt()
        finally:
            if bar is not None:
                bar.close()

    def _env_step(self, obs: np.ndarray | None) -> np.ndarray:
        cfg, st = self.cfg, self.state
        if st["episode_step"] == 0:
            raw, _ = self.env.reset(seed=child_seed(cfg.seed, SEED_TAG_TRAIN_EPISODE, st["episode"]))
            obs = self._to_buffer_obs(raw)
            self.replay.start_episode(obs, st["episode"])
            if self.virl is not None:
                self.virl.begin_episode(obs)
            self.episode_actions = []
            st["episode_return"] = 0.0
        if st["env_steps"] < cfg.random_steps:
            action = self.action_rng.uniform(self.action_low, self.action_high).astype(np.float32)
        else:
            action = np.asarray(self.agent.act(obs, deterministic=False), dtype=np.float32)
        raw, reward, terminated, truncated, _ = self.env.step(action)
        next_obs = self._to_buffer_obs(raw)
        st["episode_step"] += 1
        # The task's episode length is a time-out (bootstrapped), also if an env forgot to truncate.
        truncated = bool(truncated) or st["episode_step"] >= self.spec.episode_steps
        # VIRL: SAC learns from the distance to the demonstration, not from the task's reward.
        stored = self.virl.step_reward(next_obs, st["episode_step"]) if self.virl is not None else reward
        self.replay.add(action, float(stored), next_obs, bool(terminated))
        self.episode_actions.append(action)
        st["env_steps"] += 1
        st["episode_return"] += float(reward)
        if terminated or truncated:
            st["epoch_train_returns"].append(st["episode_return"])
            st["episode"] += 1
            st["episode_step"] = 0
        if st["env_steps"] >= max(cfg.random_steps, 1):
            for _ in range(cfg.updates_per_step):
                self._update()
        return next_obs

    def _update(self) -> None:
        a = self.cfg.agent
        batch = self.replay.sample(a.sac.batch_size)
        obs_batch = paired = mem_batch = None
        if a.rlv.enabled:
            obs_batch = self.obs_buffer.sample(a.rlv.obs_batch_size)
            if a.rlv.paired:
                paired = self.obs_buffer.sample_paired(a.rlv.obs_batch_size)
        if self.agent.mem_due():
            mem_batch = self.obs_buffer.sample_mem(a.mem.batch_size, a.mem.subseq_len, a.mem.n_classes)
        values = self.agent.update(batch, obs_batch=obs_batch, paired=paired, mem_batch=mem_batch)
        self.state["updates"] += 1
        sums, counts = self.state["epoch_loss_sum"], self.state["epoch_loss_count"]
        for k, v in values.items():
            if k in LOSS_COLUMNS:
                sums[k] = sums.get(k, 0.0) + float(v)
                counts[k] = counts.get(k, 0) + 1

    # ------------------------------------------------------------------------------------ evaluation
    def evaluate(self, epoch: int) -> tuple[float, float, float]:
        """Mean and std of the return and the success rate of ``eval_episodes`` deterministic episodes."""
        returns, successes = [], []
        for i in range(self.cfg.eval_episodes):
            raw, _ = self.eval_env.reset(seed=child_seed(self.cfg.seed, SEED_TAG_EVAL_EPISODE, epoch, i))
            ret, success = 0.0, False
            for _ in range(self.spec.episode_steps):
                action = self.agent.act(self._to_buffer_obs(raw), deterministic=True)
                raw, reward, terminated, truncated, info = self.eval_env.step(action)
                ret += float(reward)
                success = success or bool(info.get("success", False))
                if terminated or truncated:
                    break
            returns.append(ret)
            successes.append(success)
        return float(np.mean(returns)), float(np.std(returns)), float(np.mean(successes))

    def _end_epoch(self) -> None:
        cfg, st = self.cfg, self.state
        epoch = st["epoch"] + 1
        mean, std, success = self.evaluate(epoch)
        now = time.monotonic()
        epoch_time = st["epoch_time_s"] + (now - self._epoch_t0)
        wall = self._wall_base + (now - self._session_t0)
        losses = {
            k: st["epoch_loss_sum"][k] / st["epoch_loss_count"][k]
            if st["epoch_loss_count"].get(k)
            else math.nan
            for k in LOSS_COLUMNS
        }
        train_returns = st["epoch_train_returns"]
        values = {
            "epoch": epoch,
            "env_steps": st["env_steps"],
            "eval_return_mean": mean,
            "eval_return_std": std,
            "eval_success_rate": success,
            "train_return_mean": float(np.mean(train_returns)) if train_returns else math.nan,
            **losses,
            "updates": st["updates"],
            "steps_per_second": cfg.steps_per_epoch / epoch_time if epoch_time > 0 else math.nan,
            "wall_time_s": wall,
        }
        self.rows.append([format_cell(values[c]) for c in PROGRESS_COLUMNS])
        self.timing_rows.append([format_cell(values[c]) for c in TIMING_COLUMNS])
        st["epoch"] = epoch
        st["epoch_loss_sum"], st["epoch_loss_count"], st["epoch_train_returns"] = {}, {}, []
        st["epoch_time_s"] = 0.0
        self._epoch_t0 = time.monotonic()
        self._write_csvs()
        self._write_record("running")
        if self._tb is not None:
            for k, v in values.items():
                if k != "epoch" and isinstance(v, float) and not math.isnan(v):
                    self._tb.add_scalar(k, v, epoch)
            self._tb.flush()
        if not self._progress or not sys.stderr.isatty():
            self._log(
                f"epoch {epoch}/{cfg.epochs} steps {st['env_steps']} eval return {mean:.2f} +- {std:.2f} "
                f"success {success:.2f} ({values['steps_per_second']:.1f} steps/s)"
            )
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs:
            self.save()
