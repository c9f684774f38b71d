"""rlmu: reproducibility harness for reinforcement learning from observation videos.

Importing the package registers the gymnasium tasks (``rlmu/VisualPush-v0``,
``rlmu/VisualDrawerOpen-v0``, ``rlmu/AcrobotContinuous-v0``).
"""

import os as _os

# Headless MuJoCo rendering: EGL (Mesa's software driver on CPU machines, the NVIDIA driver on GPUs).
_os.environ.setdefault("MUJOCO_GL", "egl")
_os.environ.setdefault("PYOPENGL_PLATFORM", _os.environ["MUJOCO_GL"])

__version__ = "0.1.0"

try:
    from rlmu import envs as _envs  # noqa: F401  (registers the tasks)
except ImportError:  # pragma: no cover - only while the package is being assembled
    pass
