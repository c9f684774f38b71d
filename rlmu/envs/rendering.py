"""Fast headless rendering of MuJoCo scenes (METHODS section 1).

Meta-World's own ``render()`` path is slow on a CPU (software EGL): a 4096^2 shadow map, multisampling and
reflections over the Sawyer's 67k-face meshes. :class:`FastRenderer` applies the measured recipe:

- ``model.vis.quality.offsamples = 0`` and ``model.light_castshadow[:] = 0`` before the GL context exists;
- ``mjRND_REFLECTION`` off in the renderer's scene flags;
- ``update_scene(data, camera=...)`` + ``render()`` called directly.

The GL context is created lazily on the first :meth:`FastRenderer.render` call, so an environment built
before a ``fork`` (vector-env workers) never carries a context across it. Every live renderer is closed at
interpreter exit, before EGL is torn down, so no ``Renderer.__del__`` error spam is printed. A frame that is
all zeros is never returned silently: it raises :class:`BlankFrameError`.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable

import mujoco
import numpy as np

# Meta-World's fixed cameras are mounted with a 180-degree roll: their images come out upside down, so both
# image axes are flipped (checked visually for each camera listed here).
UPSIDE_DOWN_CAMERAS: frozenset[str] = frozenset({"corner", "corner2", "corner3", "corner4", "topview"})

_LIVE: weakref.WeakSet[FastRenderer] = weakref.WeakSet()
_exit_hook_registered = False


class BlankFrameError(RuntimeError):
    """The renderer produced an all-black frame (typically a GL context that is not current or broken)."""


def prepare_model_for_fast_rendering(model: mujoco.MjModel) -> None:
    """Disable multisampling and shadow casting on ``model`` (must run before a GL context is created).

    These fields only affect rendering, never physics.
    """
    model.vis.quality.offsamples = 0
    model.light_castshadow[:] = 0


class FastRenderer:
    """Renders ``(height, width, 3)`` uint8 RGB frames of a fixed camera, creating its GL context lazily.

    Args:
        model: the MuJoCo model (prepared with :func:`prepare_model_for_fast_rendering` by the constructor).
        height, width: image size in pixels.
        camera: name of a camera in ``model``.
        flip: rotate the image by 180 degrees (``None``: flip the cameras in ``UPSIDE_DOWN_CAMERAS``).
    """

    def __init__(
        self, model: mujoco.MjModel, height: int, width: int, camera: str, flip: bool | None = None
    ) -> None:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(f"camera {camera!r} is not in the model; choose one of {names}")
        if height <= 0 or width <= 0:
            raise ValueError(f"image size must be positive, got height={height}, width={width}")
        if height > model.vis.global_.offheight or width > model.vis.global_.offwidth:
            raise ValueError(
                f"image size {height}x{width} exceeds the model's offscreen buffer "
                f"{model.vis.global_.offheight}x{model.vis.global_.offwidth}"
            )
        prepare_model_for_fast_rendering(model)
        self.model = model
        self.height, self.width, self.camera = int(height), int(width), camera
        self.flip = camera in UPSIDE_DOWN_CAMERAS if flip is None else bool(flip)
        self._renderer: mujoco.Renderer | None = None
        _LIVE.add(self)

    def _ensure_renderer(self) -> mujoco.Renderer:
        global _exit_hook_registered
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.height, self.width)
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            if not _exit_hook_registered:
                # atexit runs last-registered first: registering after MuJoCo's EGL module has registered
                # eglTerminate (on the first context) makes our contexts close while EGL is still alive.
                atexit.register(_close_all_renderers)
                _exit_hook_registered = True
        return self._renderer

    def render(
        self, data: mujoco.MjData, decorate: Callable[[mujoco.MjvScene], None] | None = None
    ) -> np.ndarray:
        """Render the current state of ``data``; ``decorate(scene)`` may add geoms before drawing.

        Returns a fresh ``(height, width, 3)`` uint8 array. Raises :class:`BlankFrameError` on an all-zero
        frame.
        """
        renderer = self._ensure_renderer()
        renderer.update_scene(data, camera=self.camera)
        if decorate is not None:
            decorate(renderer.scene)
        frame = renderer.render()
        if self.flip:
            frame = frame[::-1, ::-1]
        frame = np.ascontiguousarray(frame)
        if not frame.any():
            raise BlankFrameError(
                f"MuJoCo rendered an all-black {self.height}x{self.width} frame from camera {self.camera!r}; "
                "the GL context is broken (check MUJOCO_GL, and that no context was created before a fork)"
            )
        return frame

    def close(self) -> None:
        """Free the GL context (idempotent); a later :meth:`render` creates a new one."""
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            renderer.close()

    def __del__(self) -> None:  # pragma: no cover - exercised at garbage collection
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser (EGL may already be gone)
            pass


def add_scene_geom(
    scene: mujoco.MjvScene,
    geom_type: int,
    size: np.ndarray,
    pos: np.ndarray,
    mat: np.ndarray,
    rgba: np.ndarray,
) -> None:
    """Append one decorative (non-physical) geom to an ``MjvScene``; silently skipped when the scene is full."""
    if scene.ngeom >= scene.maxgeom:
        return
    mujoco.mjv_initGeom(
        scene.geoms[scene.ngeom],
        int(geom_type),
        np.asarray(size, dtype=np.float64),
        np.asarray(pos, dtype=np.float64),
        np.asarray(mat, dtype=np.float64).reshape(9),
        np.asarray(rgba, dtype=np.float32),
    )
    scene.ngeom += 1


def add_scene_capsule(
    scene: mujoco.MjvScene, start: np.ndarray, end: np.ndarray, radius: float, rgba: np.ndarray
) -> None:
    """Append a capsule from ``start`` to ``end`` (world coordinates, metres)."""
    if scene.ngeom >= scene.maxgeom:
        return
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(
        geom,
        mujoco.mjtGeom.mjGEOM_CAPSULE,
        np.zeros(3),
        np.zeros(3),
        np.eye(3).reshape(9),
        np.asarray(rgba, dtype=np.float32),
    )
    mujoco.mjv_connector(
        geom,
        mujoco.mjtGeom.mjGEOM_CAPSULE,
        float(radius),
        np.asarray(start, dtype=np.float64),
        np.asarray(end, dtype=np.float64),
    )
    scene.ngeom += 1


def _close_all_renderers() -> None:
    # Close GL contexts while EGL is still alive; a Renderer.__del__ after EGL teardown prints errors.
    for renderer in list(_LIVE):
        try:
            renderer.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
