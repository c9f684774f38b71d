"""Observation domains of the state task (Acrobot): a seeded fixed transform of the state vector plus noise.

The image tasks' observation videos are rendered in another visual style (``rlmu.envs.domains``); a
state task has nothing to render, so its observation domain is a different *sensor*: the same physical
state read through a fixed, seeded linear map with an offset, plus per-frame measurement noise::

    y = R @ (scale * x) + offset + noise,     noise ~ N(0, noise_std^2) per frame and dimension

with ``x`` the task's state vector (Acrobot: ``[cos th1, sin th1, cos th2, sin th2, dth1, dth2]``).

========== =========================================================================================
domain     transform
========== =========================================================================================
robot      identity: the environment's state vector as it is (the agent's own domain)
human      ``R`` a random rotation (Haar-distributed, det +1), ``scale`` per dimension log-uniform in
           [0.5, 2], ``offset`` per dimension N(0, 0.5^2), noise std 0.02
========== =========================================================================================

``R``, ``scale`` and ``offset`` are functions of the domain's seed alone (default 0): ``get_state_domain
("human", seed=3)`` is another fixed sensor, the same one every time. The map is invertible, so the
physical state is recoverable from a ``human`` frame up to the noise (a learned encoder can align the two
domains), but no dimension of a ``human`` frame means what it means in the agent's observation: the two
domains differ as a robot camera and a human video do. The noise is drawn from a generator the caller
seeds (the environment seeds it from its reset seed), so a whole dataset is reproducible.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

import numpy as np

IDENTITY_NAMES: tuple[str, ...] = ("robot", "state")  # "state": the raw state vector, also the identity


@dataclass(frozen=True)
class StateDomain:
    """One observation domain of a state task; ``identity`` domains return the state unchanged."""

    name: str
    description: str
    seed: int = 0
    identity: bool = True
    rotate: bool = False  # mix the dimensions by a seeded random rotation
    scale_range: tuple[float, float] = (1.0, 1.0)  # per-dimension scale, log-uniform in this range
    offset_std: float = 0.0  # std of the seeded per-dimension offset
    noise_std: float = 0.0  # std of the per-frame Gaussian measurement noise

    def transform(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(matrix (dim, dim), offset (dim,))``, float64, fixed by the seed: ``y = matrix @ x + offset``."""
        return _transform(self, int(dim))

    def bounds(self, low, high, margin: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
        """The box ``[low, high]`` of the state seen in this domain: the smallest box holding the image of
        the state box under the transform, widened by ``margin`` noise stds. float32 ``(low, high)``."""
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        if self.identity:
            return low.astype(np.float32), high.astype(np.float32)
        matrix, offset = self.transform(len(low))
        centre = matrix @ ((low + high) / 2) + offset
        half = np.abs(matrix) @ ((high - low) / 2) + margin * self.noise_std
        return (centre - half).astype(np.float32), (centre + half).astype(np.float32)

    def apply(self, states, rng: np.random.Generator | None = None) -> np.ndarray:
        """States ``(..., D)`` seen in this domain, float32. ``rng`` draws the measurement noise (required
        when ``noise_std > 0``)."""
        x = np.asarray(states, dtype=np.float64)
        if self.identity:
            return x.astype(np.float32)
        matrix, offset = self.transform(x.shape[-1])
        y = x @ matrix.T + offset
        if self.noise_std > 0:
            if rng is None:
                raise ValueError(f"state domain {self.name!r} adds noise: pass a seeded generator")
            y = y + rng.normal(0.0, self.noise_std, size=y.shape)
        return y.astype(np.float32)


@cache
def _transform(domain: StateDomain, dim: int) -> tuple[np.ndarray, np.ndarray]:
    if domain.identity:
        return np.eye(dim), np.zeros(dim)
    rng = np.random.default_rng([domain.seed, dim])
    rotation = np.eye(dim)
    if domain.rotate:
        q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
        rotation = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
        if np.linalg.det(rotation) < 0:
            rotation[:, 0] = -rotation[:, 0]
    lo, hi = domain.scale_range
    scale = np.exp(rng.uniform(np.log(lo), np.log(hi), size=dim))
    offset = rng.normal(0.0, domain.offset_std, size=dim) if domain.offset_std > 0 else np.zeros(dim)
    matrix, off = rotation * scale[None, :], offset
    matrix.setflags(write=False)
    off.setflags(write=False)
    return matrix, off


ROBOT = StateDomain(name="robot", description="identity: the environment's state vector")

STATE_DOMAINS: dict[str, StateDomain] = {
    "robot": ROBOT,
    "human": StateDomain(
        name="human",
        description="seeded random rotation, per-dimension scale in [0.5, 2] and offset, noise std 0.02",
        identity=False,
        rotate=True,
        scale_range=(0.5, 2.0),
        offset_std=0.5,
        noise_std=0.02,
    ),
}


def get_state_domain(domain: str | StateDomain, seed: int | None = None) -> StateDomain:
    """Look a state domain up by name (``"state"`` is the identity, as ``"robot"``); ``seed`` overrides the
    domain's seed. Unknown names raise a ValueError listing the choices."""
    if isinstance(domain, StateDomain):
        resolved = domain
    elif not isinstance(domain, str):
        raise ValueError(f"a state domain is a name, one of {sorted(STATE_DOMAINS)}; got {domain!r}")
    elif domain in IDENTITY_NAMES:
        resolved = dataclasses.replace(ROBOT, name=domain)
    else:
        try:
            resolved = STATE_DOMAINS[domain]
        except KeyError:
            raise ValueError(
                f"unknown state domain {domain!r}; choose one of {sorted(STATE_DOMAINS)}"
            ) from None
    return resolved if seed is None else dataclasses.replace(resolved, seed=int(seed))
