"""Observation-domain styles: the same MuJoCo scene rendered with a real visual domain shift (METHODS sec. 2).

A style changes only rendering fields of the model (per-geom ``rgba``/``matid``, light colours, the
headlight, the camera position) and may draw decorative, non-physical geoms into the render scene (a
human forearm and hand that follow the end effector). Physics never sees a style. Applying a style is
fully undoable: :class:`ModelStyler` snapshots the original fields once and restores them byte for byte.

Styles are named and seeded: the seed drives a small, reproducible jitter of every replaced surface colour,
so ``get_style("human", seed=3)`` is a different but fixed look; the default seed is 0.

========== ============================================================================================
style      look
========== ============================================================================================
robot      identity: Meta-World's scene as shipped (red Sawyer arm, wood table, tiled floor)
human      robot arm and gripper hidden; a light-skinned forearm and hand in a navy sleeve follow the
           end effector; plain grey table, dark green floor, beige walls; warm, brighter light;
           camera moved 3 cm right, 2 cm up, 2 cm back (in the camera's own frame)
human_dark robot hidden; a dark-skinned forearm and hand in a dark-red sleeve; slate-blue table, pale
           floor, grey walls; dim, cool light; camera moved 3 cm left, 1 cm down, 2 cm forward
========== ============================================================================================

Task objects (puck, goal marker, drawer) keep their colours in every style: the task must stay readable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import mujoco
import numpy as np

from rlmu.envs.rendering import add_scene_capsule, add_scene_geom

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class DomainStyle:
    """One observation-domain look. Colours are RGB in [0, 1]; lengths in metres.

    ``None`` for a surface colour keeps the original material (texture included); a colour replaces the
    material by that flat colour.
    """

    name: str
    description: str
    seed: int = 0
    colour_jitter: float = 0.0  # std of the seeded per-channel jitter on replaced colours
    hide_robot: bool = False  # make every Sawyer geom (arm, gripper, pedestal) invisible
    human_arm: bool = False  # draw a forearm + hand following the end effector
    skin_rgb: RGB = (0.87, 0.68, 0.55)
    sleeve_rgb: RGB = (0.15, 0.2, 0.45)
    table_rgb: RGB | None = None
    floor_rgb: RGB | None = None
    wall_rgb: RGB | None = None
    light_scale: float = 1.0  # multiplies every light's diffuse colour
    light_tint: RGB = (1.0, 1.0, 1.0)  # multiplies every light's diffuse and specular colour per channel
    headlight_ambient: float | None = None  # grey level of the headlight's ambient term (None: keep)
    camera_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (right, up, back) in the camera frame


ROBOT = DomainStyle(name="robot", description="identity: Meta-World's scene as shipped")

STYLES: dict[str, DomainStyle] = {
    "robot": ROBOT,
    "human": DomainStyle(
        name="human",
        description="light-skinned hand and forearm, navy sleeve, plain grey table, dark floor, warm light",
        colour_jitter=0.03,
        hide_robot=True,
        human_arm=True,
        skin_rgb=(0.89, 0.70, 0.57),
        sleeve_rgb=(0.12, 0.18, 0.45),
        table_rgb=(0.62, 0.61, 0.57),
        floor_rgb=(0.18, 0.30, 0.20),
        wall_rgb=(0.80, 0.72, 0.58),
        light_scale=1.15,
        light_tint=(1.0, 0.93, 0.82),
        headlight_ambient=0.45,
        camera_offset=(0.03, 0.02, 0.02),
    ),
    "human_dark": DomainStyle(
        name="human_dark",
        description="dark-skinned hand and forearm, dark-red sleeve, slate-blue table, pale floor, dim cool light",
        colour_jitter=0.03,
        hide_robot=True,
        human_arm=True,
        skin_rgb=(0.42, 0.28, 0.19),
        sleeve_rgb=(0.50, 0.08, 0.10),
        table_rgb=(0.25, 0.32, 0.40),
        floor_rgb=(0.82, 0.82, 0.85),
        wall_rgb=(0.45, 0.47, 0.50),
        light_scale=0.8,
        light_tint=(0.85, 0.92, 1.0),
        headlight_ambient=0.3,
        camera_offset=(-0.03, -0.01, -0.02),
    ),
}


def get_style(style: str | DomainStyle, seed: int | None = None) -> DomainStyle:
    """Look a style up by name (or pass one through); ``seed`` overrides the style's colour-jitter seed."""
    if isinstance(style, DomainStyle):
        resolved = style
    else:
        try:
            resolved = STYLES[style]
        except KeyError:
            raise ValueError(f"unknown domain style {style!r}; choose one of {sorted(STYLES)}") from None
    return resolved if seed is None else dataclasses.replace(resolved, seed=int(seed))


# Names of the scene parts in Meta-World's Sawyer scenes.
ROBOT_ROOT_BODY = "base"  # every body below it belongs to the Sawyer (arm, gripper, pedestal, head)
TABLE_BODY = "tablelink"
WALL_BODY = "RetainingWall"
FLOOR_GEOM = "floor"
HAND_BODY = "hand"  # the gripper body; the drawn hand is centred on its two finger pads
FINGER_PAD_BODIES = ("leftpad", "rightpad")


def _subtree_bodies(model: mujoco.MjModel, root: int) -> set[int]:
    bodies = {root}
    for b in range(model.nbody):  # parents always have smaller ids than their children
        if model.body_parentid[b] in bodies and b != 0:
            bodies.add(b)
    return bodies


class ModelStyler:
    """Applies :class:`DomainStyle` s to one ``MjModel`` and restores its original look exactly.

    The snapshot of the rendering fields is taken at construction: build the styler on a pristine model.
    """

    def __init__(self, model: mujoco.MjModel) -> None:
        self.model = model
        self._snapshot = {
            "geom_rgba": model.geom_rgba.copy(),
            "geom_matid": model.geom_matid.copy(),
            "light_diffuse": model.light_diffuse.copy(),
            "light_specular": model.light_specular.copy(),
            "cam_pos": model.cam_pos.copy(),
            "headlight_ambient": model.vis.headlight.ambient.copy(),
        }
        body_of = model.geom_bodyid
        base = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ROBOT_ROOT_BODY)
        robot_bodies = _subtree_bodies(model, base) if base >= 0 else set()
        self.robot_geoms = np.array([g for g in range(model.ngeom) if body_of[g] in robot_bodies], dtype=int)

        def geoms_of_body(name: str) -> np.ndarray:
            b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
            return np.flatnonzero(body_of == b) if b >= 0 else np.zeros(0, dtype=int)

        self.table_geoms = geoms_of_body(TABLE_BODY)
        self.wall_geoms = geoms_of_body(WALL_BODY)
        floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, FLOOR_GEOM)
        self.floor_geoms = np.array([floor] if floor >= 0 else [], dtype=int)
        self.hand_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, HAND_BODY)
        self.pad_bodies = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, n) for n in FINGER_PAD_BODIES]
        self.active: DomainStyle = ROBOT

    def restore(self) -> None:
        """Put every rendering field back to its value at construction."""
        m, s = self.model, self._snapshot
        m.geom_rgba[:] = s["geom_rgba"]
        m.geom_matid[:] = s["geom_matid"]
        m.light_diffuse[:] = s["light_diffuse"]
        m.light_specular[:] = s["light_specular"]
        m.cam_pos[:] = s["cam_pos"]
        m.vis.headlight.ambient[:] = s["headlight_ambient"]
        self.active = ROBOT

    def apply(self, style: DomainStyle, camera_id: int) -> None:
        """Restore the original look, then apply ``style`` (camera offset applied to ``camera_id`` only).

        After moving a camera the caller must recompute camera poses (``mj_camlight`` / ``mj_forward``) on
        the data it renders.
        """
        self.restore()
        m = self.model
        rng = np.random.default_rng(style.seed)

        def colour(rgb: RGB) -> np.ndarray:
            jitter = rng.normal(0.0, style.colour_jitter, 3) if style.colour_jitter > 0 else np.zeros(3)
            return np.append(np.clip(np.asarray(rgb) + jitter, 0.0, 1.0), 1.0).astype(np.float32)

        if style.hide_robot:
            m.geom_rgba[self.robot_geoms, 3] = 0.0
        for geoms, rgb in (
            (self.table_geoms, style.table_rgb),
            (self.floor_geoms, style.floor_rgb),
            (self.wall_geoms, style.wall_rgb),
        ):
            if rgb is not None and len(geoms):
                visible = geoms[m.geom_rgba[geoms, 3] > 0]
                m.geom_matid[visible] = -1  # drop the texture: a flat replacement colour
                m.geom_rgba[visible] = colour(rgb)
        tint = np.asarray(style.light_tint, dtype=np.float32)
        m.light_diffuse[:] = np.clip(m.light_diffuse * style.light_scale * tint, 0.0, 1.0)
        m.light_specular[:] = np.clip(m.light_specular * tint, 0.0, 1.0)
        if style.headlight_ambient is not None:
            m.vis.headlight.ambient[:] = style.headlight_ambient
        if any(style.camera_offset):
            # Offset given in the camera frame (x right, y up, z back); cam_pos lives in the parent frame.
            offset = np.zeros(3)
            mujoco.mju_rotVecQuat(offset, np.asarray(style.camera_offset, float), m.cam_quat[camera_id])
            m.cam_pos[camera_id] = self._snapshot["cam_pos"][camera_id] + offset
        self.active = style

    def decorate(self, scene: mujoco.MjvScene, data: mujoco.MjData) -> None:
        """Draw the active style's human forearm and hand into ``scene`` (no-op for other styles)."""
        style = self.active
        if not style.human_arm or self.hand_body < 0:
            return
        rng = np.random.default_rng(style.seed + 1)
        jitter = rng.normal(0.0, style.colour_jitter, 6) if style.colour_jitter > 0 else np.zeros(6)
        skin = np.append(np.clip(np.asarray(style.skin_rgb) + jitter[:3], 0, 1), 1.0)
        sleeve = np.append(np.clip(np.asarray(style.sleeve_rgb) + jitter[3:], 0, 1), 1.0)
        pads = [data.xpos[b] for b in self.pad_bodies if b >= 0]
        palm = np.mean(pads, axis=0) if pads else data.xpos[self.hand_body].copy()
        palm = palm + np.array([0.0, 0.0, 0.01])
        # A fist-sized ellipsoid around the finger pads, then a forearm reaching back and up towards where a
        # person would stand (behind the robot's base side of the table, -y), then a sleeve.
        add_scene_geom(
            scene, mujoco.mjtGeom.mjGEOM_ELLIPSOID, np.array([0.03, 0.035, 0.035]), palm, np.eye(3), skin
        )
        wrist = palm + np.array([0.0, -0.05, 0.05])
        elbow = wrist + np.array([0.0, -0.16, 0.22])
        shoulder = elbow + np.array([0.0, -0.20, 0.25])
        add_scene_capsule(scene, palm, wrist, 0.022, skin)
        add_scene_capsule(scene, wrist, elbow, 0.028, skin)
        add_scene_capsule(scene, elbow, shoulder, 0.04, sleeve)
