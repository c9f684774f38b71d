"""rlmu: reproducibility harness for reinforcement learning from observation videos.

Importing the package registers the gymnasium tasks (``rlmu/VisualPush-v0``,
``rlmu/VisualDrawerOpen-v0``, ``rlmu/AcrobotContinuous-v0``).
"""

import os as _os

# Headless MuJoCo rendering: EGL (Mesa's software driver on CPU machines, the NVIDIA driver on GPUs).
_os.environ.setdefault("MUJOCO_GL", "egl")
_os.environ.setdefault("PYOPENGL_PLATFORM", _os.environ["MUJOCO_GL"])

__version__ = "0.1.0"


# The `rlmu` command and `python -m rlmu`: a preemption signal (a scheduler's SIGTERM) that arrives while the
# package and its dependencies load (about half a second) is held, not fatal; the command then handles it
# (`rlmu train` checkpoints or exits 75, other commands end as the signal's default would).
_HELD_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")
_held: list[int] = []
_held_previous: dict[int, object] = {}


def _hold_signal(signum, frame) -> None:  # noqa: ARG001
    _held.append(signum)


def _running_as_command() -> bool:
    import sys as _sys

    argv0 = _sys.argv[0] if _sys.argv else ""
    return argv0 == "-m" or _os.path.basename(argv0) == "rlmu"


if _running_as_command():
    import signal as _signal

    for _name in _HELD_SIGNALS:
        _sig = getattr(_signal, _name)
        _held_previous[_sig] = _signal.signal(_sig, _hold_signal)


def release_held_signals(deliver: bool = True) -> list[int]:
    """Stop holding preemption signals (restore the previous handlers) and return the ones that arrived while
    the package loaded. ``deliver``: send them again, now with the previous handlers in place."""
    import signal as _signal

    pending = list(_held)
    _held.clear()
    for sig, handler in _held_previous.items():
        if _signal.getsignal(sig) is _hold_signal:
            _signal.signal(sig, handler)
    _held_previous.clear()
    if deliver:
        for sig in pending:
            _os.kill(_os.getpid(), sig)
    return pending


try:
    from rlmu import envs as _envs  # noqa: F401  (registers the tasks)
except ImportError:  # pragma: no cover - only while the package is being assembled
    pass
