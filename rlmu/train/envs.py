"""Environments of a seed pack, in the training process or in worker processes.

A pack steps one environment per member. Pixel environments spend most of a step rendering, so with
``env_workers = N > 0`` they live in N worker processes (member environments spread over them in turn) and
the members' steps run in parallel: the trainer sends every member's action (``step_async``), then collects
the results (``step_wait``). The workers are started with the ``spawn`` method and build their
environments themselves, so every renderer (and its GL context) is created lazily inside the process that
uses it (METHODS section 1: a GL context that exists before a fork makes workers hang). An environment
gives the same observations in a worker as in the training process: its state is a function of its reset
seed and actions.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import gymnasium as gym
import numpy as np


def make_local_env(env_id: str, kwargs: dict[str, Any]) -> gym.Env:
    import rlmu  # noqa: F401  (registers the tasks; also in a fresh worker process)

    return gym.make(env_id, **kwargs)


def _worker(conn, specs: list[tuple[str, dict[str, Any]]]) -> None:
    """Serve ``(command, env index, argument)`` requests for the environments ``specs`` until "close"."""
    envs = []
    try:
        envs = [make_local_env(env_id, kwargs) for env_id, kwargs in specs]
        conn.send(("ok", [(e.observation_space, e.action_space) for e in envs]))
        while True:
            command, i, arg = conn.recv()
            if command == "close":
                break
            try:
                if command == "reset":
                    result = envs[i].reset(seed=arg)
                elif command == "step":
                    result = envs[i].step(arg)
                else:
                    raise ValueError(f"unknown command {command!r}")
                conn.send(("ok", result))
            except Exception as exc:  # sent to the trainer, which raises it there
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for e in envs:
            e.close()
        conn.close()


class EnvWorkers:
    """N worker processes holding environments; :meth:`env` gives a proxy with the gymnasium calls the
    trainer uses (``reset``, ``step``, ``step_async`` / ``step_wait``, the spaces)."""

    def __init__(self, n_workers: int, specs: list[tuple[str, dict[str, Any]]]):
        ctx = mp.get_context("spawn")
        n = max(1, min(n_workers, len(specs)))
        self._owner = [i % n for i in range(len(specs))]  # environment i lives in worker i mod n
        self._index = [i // n for i in range(len(specs))]
        self._conns, self._procs = [], []
        for w in range(n):
            parent, child = ctx.Pipe()
            mine = [spec for i, spec in enumerate(specs) if self._owner[i] == w]
            proc = ctx.Process(target=_worker, args=(child, mine), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self._spaces = []
        for conn in self._conns:
            self._spaces.append(self._receive(conn))

    @staticmethod
    def _receive(conn) -> Any:
        try:
            status, payload = conn.recv()
        except EOFError:
            raise RuntimeError("an environment worker process ended unexpectedly") from None
        if status != "ok":
            raise RuntimeError(f"environment worker: {payload}")
        return payload

    def env(self, i: int) -> WorkerEnv:
        return WorkerEnv(self, i)

    def send(self, i: int, command: str, arg: Any) -> None:
        self._conns[self._owner[i]].send((command, self._index[i], arg))

    def receive(self, i: int) -> Any:
        return self._receive(self._conns[self._owner[i]])

    def spaces(self, i: int):
        return self._spaces[self._owner[i]][self._index[i]]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close", 0, None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        self._conns, self._procs = [], []


class WorkerEnv:
    """One environment held by :class:`EnvWorkers`. Requests to one worker are answered in order, so the
    results of ``step_async`` calls must be collected with ``step_wait`` in the order they were sent."""

    def __init__(self, workers: EnvWorkers, index: int):
        self._workers, self._i = workers, index
        self.observation_space, self.action_space = workers.spaces(index)

    def reset(self, seed: int | None = None):
        self._workers.send(self._i, "reset", seed)
        return self._workers.receive(self._i)

    def step_async(self, action: np.ndarray) -> None:
        self._workers.send(self._i, "step", np.asarray(action))

    def step_wait(self):
        return self._workers.receive(self._i)

    def step(self, action: np.ndarray):
        self.step_async(action)
        return self.step_wait()

    def close(self) -> None:  # the processes are closed by EnvWorkers.close
        pass


def step_all(envs: list, actions: list[np.ndarray]) -> list[tuple]:
    """``env.step(action)`` for every pair, environments in worker processes stepping in parallel."""
    for env, action in zip(envs, actions, strict=True):
        if isinstance(env, WorkerEnv):
            env.step_async(action)
    return [
        env.step_wait() if isinstance(env, WorkerEnv) else env.step(action)
        for env, action in zip(envs, actions, strict=True)
    ]
