"""The Kuavo 4.5 upper body as our own MJCF: fixed torso, two 7-DoF arms, palm plates, a table, a box.

Kinematics (joint positions, axes, ranges) follow Leju's published MuJoCo description of the Kuavo 4.5
(`biped_s45`); the geometry is simple capsules and boxes (no meshes), sized for contact, not looks.

Frames and names other code relies on:
- world frame: z up, the torso (`base_link`) fixed at BASE_POSITION with identity orientation, so
  "base frame" = world frame shifted by BASE_POSITION; x forward, y to the robot's left.
- hand point: sites `left_eef` / `right_eef` at the centre of each palm plate's contact face. The palm
  faces the other hand (left palm normal -y, right +y, in the hand frame) and the fingers point along
  the hand frame's -z; the site frame is the hand (wrist-pitch link) frame.

A user-supplied MJCF (load_model(path)) must provide, with these exact names:
- hinge joints ARM_JOINT_NAMES, each driven by exactly one `position` actuator (any actuator name);
- sites `left_eef`, `right_eef` (the hand points, on the last link of each arm);
- a body `box` with a free joint and a geom `box` (the object; its mass and friction are randomised);
- a body `base_link` (its position is the robot base position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BASE_POSITION = np.array([0.0, 0.0, 0.82])  # torso origin, world (m); Leju's model stands it at 0.82 m
NUM_JOINTS = 28  # Leju's sensor vector: 0-11 legs, 12-18 left arm, 19-25 right arm, 26-27 head
ARM_JOINT_SLICE = slice(12, 26)
ARM_JOINT_NAMES = tuple(f"zarm_{side}{i}_joint" for side in "lr" for i in range(1, 8))
LEFT_EEF_SITE, RIGHT_EEF_SITE = "left_eef", "right_eef"
BOX_BODY, BOX_GEOM, BASE_BODY = "box", "box", "base_link"


@dataclass(frozen=True)
class _ArmJoint:
    index: int  # 1..7
    pos_in_parent: tuple[float, float, float]  # left arm (m)
    axis: str  # "x" (roll), "y" (pitch) or "z" (yaw)
    left_range: tuple[float, float]  # rad
    kp: float  # position-actuator stiffness (N m / rad)
    kv: float  # its damping (N m s / rad)
    torque_limit: float  # N m, Leju's actuator limits
    mass: float  # kg, of the link this joint moves (Leju's values)


# Left arm, parent to child (Leju's biped_s45). Shoulder and elbow are stiff, the wrist soft: the
# stiffness that squeezes the box comes from the shoulder/elbow, the wrist only keeps the palm turned.
_ARM_JOINTS = (
    _ArmJoint(1, (-0.0175, 0.2927, 0.4245), "y", (-3.1416, 1.5708), 300.0, 20.0, 100.0, 0.962),  # shoulder pitch
    _ArmJoint(2, (0.0, 0.0, 0.0), "x", (-0.3491, 2.0944), 300.0, 20.0, 50.0, 0.570),  # shoulder roll
    _ArmJoint(3, (0.0, 0.0, 0.0), "z", (-1.5708, 1.5708), 300.0, 20.0, 39.0, 1.650),  # upper-arm yaw
    _ArmJoint(4, (0.02, 0.0, -0.2837), "y", (-2.6180, 0.0), 300.0, 20.0, 50.0, 0.429),  # elbow pitch
    _ArmJoint(5, (-0.02, 0.0, -0.1270), "z", (-1.5708, 1.5708), 100.0, 5.0, 12.0, 0.610),  # forearm yaw
    _ArmJoint(6, (0.0002, 0.0, -0.1065), "x", (-1.3090, 0.6981), 100.0, 5.0, 12.0, 0.330),  # wrist roll
    _ArmJoint(7, (0.0, 0.0, -0.0210), "y", (-0.6981, 0.6981), 100.0, 5.0, 12.0, 0.640),  # wrist pitch
)


def _joint_range(joint: _ArmJoint, side: str) -> tuple[float, float]:
    """The right arm mirrors the left in y: its roll and yaw ranges flip sign, pitch ranges stay."""
    lo, hi = joint.left_range
    if side == "r" and joint.axis in ("x", "z"):
        return -hi, -lo
    return lo, hi


ARM_JOINT_LOWER = np.array([_joint_range(j, s)[0] for s in "lr" for j in _ARM_JOINTS])
ARM_JOINT_UPPER = np.array([_joint_range(j, s)[1] for s in "lr" for j in _ARM_JOINTS])

# Palm plate: its contact face is PALM_INWARD_OFFSET_M from the wrist axis towards the other hand.
# With the palm centred on the wrist axis the forearm reaches the box top before the palm reaches
# its side; 4.5 cm keeps the forearm clear.
PALM_INWARD_OFFSET_M = 0.045
PALM_ALONG_FINGERS_M = 0.09  # palm centre from the wrist-pitch axis, along the fingers
PALM_HALF_SIZE = (0.045, 0.006, 0.055)  # across the hand, thickness, along the fingers (m)

# Scene. The table is narrow in y (|y| <= 0.2 m): hands at |y| >= 0.3 m (start poses, HOME_ARM_Q)
# are clear of it at any height; the box sits on it in front of the robot, where both palms reach.
# Heights: with the fingers forward the hands reach y = +-0.115 m (the squeezed box sides) from base
# z = 0.0 to 0.2 m at x = 0.35 m; the box centre at base z 0.0 puts the grasp (2 cm above it) and the
# lift (0.15 m) inside that band.
TABLE_TOP_Z = 0.72  # world (m)
TABLE_CENTER_XY_BASE = (0.375, 0.0)
TABLE_HALF_XY = (0.225, 0.2)
BOX_SIZE = np.array([0.25, 0.25, 0.20])  # full extents x, y, z (m)
BOX_NOMINAL_POSITION = np.array([0.35, 0.0, TABLE_TOP_Z + BOX_SIZE[2] / 2])  # box centre, world, at rest
BOX_TORSIONAL_FRICTION = 0.02  # m: with condim 4 this damps the box swinging about the palm normal

# Fingers forward: the hand pitched 1.3 rad from hanging straight down, palm facing the other hand.
# This keeps the wrist pitch mid-range through approach and lift (fingers down ran it into its limit).
_FINGERS_PITCH_RAD = -1.3
_FORWARD_QUAT_XYZW = np.array([0.0, math.sin(_FINGERS_PITCH_RAD / 2), 0.0, math.cos(_FINGERS_PITCH_RAD / 2)])
DEFAULT_HAND_QUAT_XYZW = {"left": _FORWARD_QUAT_XYZW.copy(), "right": _FORWARD_QUAT_XYZW.copy()}


def _mirror_box(low, high) -> tuple[np.ndarray, np.ndarray]:
    """A left-hand box (base frame) mirrored in y for the right hand."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return np.array([low[0], -high[1], low[2]]), np.array([high[0], -low[1], high[2]])


# Hand start poses (base frame, low/high corners). The suggested range x U(0.2, 0.5), |y| U(0.3, 0.6),
# z U(-0.05, 0.3) is partly out of reach with the fingers forward (far out *and* low fails first);
# every point of this box is reached by IK within 1 mm / 0.05 rad (checked on a 2.5 cm grid).
_LEFT_START = (np.array([0.20, 0.30, 0.00]), np.array([0.35, 0.45, 0.25]))
HAND_START_BOX_BASE = {"left": _LEFT_START, "right": _mirror_box(*_LEFT_START)}
# Where a commanded hand target may go (base frame): holds every start pose, the pre-grasp beside the
# box, the squeeze (up to 5 cm inside its sides) and the lift, for box positions within +-3 cm; the
# hands never cross the midline.
_LEFT_WORKSPACE = (np.array([0.15, 0.0, -0.05]), np.array([0.45, 0.50, 0.30]))
HAND_WORKSPACE_BASE = {"left": _LEFT_WORKSPACE, "right": _mirror_box(*_LEFT_WORKSPACE)}

# Bent-elbow rest pose (rad): shoulders 0.3 rad forward and slightly out, elbows at -1.0, so the
# fingers point forward as DEFAULT_HAND_QUAT_XYZW; the hands are at base (0.41, +-0.32, 0.05) m, beside
# the table (|y| > 0.2 m). The right arm mirrors the left (roll and yaw signs flip).
_HOME_LEFT = np.array([-0.3, 0.15, 0.0, -1.0, 0.0, 0.0, 0.0])
HOME_ARM_Q = np.concatenate([_HOME_LEFT, _HOME_LEFT * np.array([1, -1, -1, 1, -1, -1, 1])])


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _axis_vector(axis: str) -> str:
    return {"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}[axis]


def _link_geoms(index: int, mirror: float) -> str:
    """Collision/visual geoms of the link moved by joint `index`; `mirror` is +1 left, -1 right."""
    inward = -mirror  # towards the other hand, in y
    if index == 1:
        return '<geom class="arm" type="cylinder" size="0.045 0.03" zaxis="0 1 0"/>'
    if index == 3:
        return '<geom class="arm" type="capsule" size="0.04" fromto="0 0 -0.04 0.02 0 -0.25"/>'
    if index == 4:
        return '<geom class="arm" type="capsule" size="0.03" fromto="0 0 0 -0.02 0 -0.11"/>'
    if index == 5:
        return '<geom class="arm" type="capsule" size="0.025" fromto="0 0 0 0 0 -0.09"/>'
    if index == 7:
        px, py, pz = PALM_HALF_SIZE
        plate_y = inward * (PALM_INWARD_OFFSET_M - py)
        hand_half_y = (PALM_INWARD_OFFSET_M - 2 * py + 0.02) / 2
        hand_y = inward * (PALM_INWARD_OFFSET_M - 2 * py - 0.02) / 2
        side = "left" if mirror > 0 else "right"
        site_y = inward * PALM_INWARD_OFFSET_M
        return (
            f'<geom class="arm" type="box" size="0.03 {hand_half_y:.4f} 0.05" pos="0 {hand_y:.4f} -0.07"/>\n'
            f'<geom name="{side}_palm" class="palm" type="box" size="{px} {py} {pz}" '
            f'pos="0 {plate_y:.4f} {-PALM_ALONG_FINGERS_M}"/>\n'
            f'<site name="{side}_eef" pos="0 {site_y:.4f} {-PALM_ALONG_FINGERS_M}" size="0.01" rgba="1 0 0 1"/>'
        )
    return '<geom class="arm" type="sphere" size="0.035"/>'  # roll joints: a compact housing


def _arm_xml(side: str) -> str:
    """The 7 nested bodies of one arm, shoulder to hand."""
    mirror = 1.0 if side == "l" else -1.0
    opening, closing = [], []
    for joint in _ARM_JOINTS:
        x, y, z = joint.pos_in_parent
        lo, hi = _joint_range(joint, side)
        name = f"zarm_{side}{joint.index}"
        # gravcomp: the arm holds its own weight (as Leju's controller does with its feed-forward),
        # so the position gains only track and squeeze.
        opening.append(
            f'<body name="{name}_link" pos="{_fmt((x, mirror * y, z))}" gravcomp="1">\n'
            f'<inertial pos="0 0 {-0.05 if joint.index in (3, 4, 5, 7) else 0.0}" mass="{joint.mass}" '
            f'diaginertia="0.003 0.003 0.001"/>\n'
            f'<joint name="{name}_joint" axis="{_axis_vector(joint.axis)}" range="{lo:.4f} {hi:.4f}"/>\n'
            f"{_link_geoms(joint.index, mirror)}"
        )
        closing.append("</body>")
    return "\n".join(opening) + "\n" + "\n".join(reversed(closing))


def _actuators_xml() -> str:
    lines = []
    for side in "lr":
        for joint in _ARM_JOINTS:
            lo, hi = _joint_range(joint, side)
            name = f"zarm_{side}{joint.index}_joint"
            lines.append(
                f'<position name="{name}" joint="{name}" kp="{joint.kp}" kv="{joint.kv}" '
                f'ctrlrange="{lo:.4f} {hi:.4f}" forcerange="{-joint.torque_limit} {joint.torque_limit}"/>'
            )
    return "\n".join(lines)


def build_mjcf(
    box_mass: float = 1.0,
    box_friction: float = 0.8,
    box_size: np.ndarray | tuple[float, float, float] = tuple(BOX_SIZE),
    box_position: np.ndarray | tuple[float, float, float] | None = None,
    timestep: float = 0.002,
) -> str:
    """The scene as an MJCF string. box_size is full extents (m); box_position the box centre (world),
    default on the table at BOX_NOMINAL_POSITION's x, y."""
    half = np.asarray(box_size, dtype=float) / 2
    if box_position is None:
        box_position = (BOX_NOMINAL_POSITION[0], BOX_NOMINAL_POSITION[1], TABLE_TOP_Z + half[2])
    table_half = (*TABLE_HALF_XY, TABLE_TOP_Z / 2)
    table_pos = (BASE_POSITION[0] + TABLE_CENTER_XY_BASE[0], BASE_POSITION[1] + TABLE_CENTER_XY_BASE[1],
                 TABLE_TOP_Z / 2)
    # Contact set-up that decides whether the squeeze holds: elliptic friction cones with a high
    # impratio (no creeping slip), condim 4 (torsional friction; condim 3 lets the box swing about
    # the palm normal). The box has priority 1 so *its* friction and condim apply to every contact
    # it makes: randomising the box friction then really changes the grip.
    return f"""<mujoco model="kuavo_upper_body">
  <compiler angle="radian"/>
  <option timestep="{timestep}" cone="elliptic" impratio="10" integrator="implicitfast"/>
  <default>
    <joint armature="0.05" damping="0.1" limited="true"/>
    <geom contype="1" conaffinity="2" condim="3" friction="0.8 0.02 0.0001" rgba="0.8 0.8 0.85 1"/>
    <default class="arm"><geom rgba="0.75 0.75 0.8 1"/></default>
    <default class="palm">
      <geom condim="4" friction="0.8 {BOX_TORSIONAL_FRICTION} 0.0001" rgba="0.2 0.2 0.2 1"/>
    </default>
    <default class="scene"><geom contype="2" conaffinity="3"/></default>
  </default>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1"/>
    <geom name="floor" class="scene" type="plane" size="3 3 0.1" rgba="0.5 0.55 0.6 1"/>
    <geom name="table" class="scene" type="box" size="{_fmt(table_half)}" pos="{_fmt(table_pos)}"
          rgba="0.6 0.45 0.3 1"/>
    <body name="{BASE_BODY}" pos="{_fmt(BASE_POSITION)}">
      <inertial pos="0 0 0.2" mass="20" diaginertia="0.9 0.8 0.3"/>
      <geom class="arm" type="box" size="0.1 0.15 0.2" pos="-0.02 0 0.22"/>
      <geom class="arm" type="sphere" size="0.09" pos="-0.02 0 0.62"/>
      {_arm_xml("l")}
      {_arm_xml("r")}
    </body>
    <body name="{BOX_BODY}" pos="{_fmt(box_position)}">
      <freejoint name="box_free"/>
      <geom name="{BOX_GEOM}" class="scene" type="box" size="{_fmt(half)}" mass="{box_mass}" priority="1"
            condim="4" friction="{box_friction} {BOX_TORSIONAL_FRICTION} 0.0001" rgba="0.85 0.6 0.2 1"/>
    </body>
  </worldbody>
  <actuator>
{_actuators_xml()}
  </actuator>
</mujoco>
"""


def check_model(model) -> None:
    """Raise ValueError naming whatever the sim needs and the model lacks (see the module docstring)."""
    import mujoco

    missing = []
    needed = ((mujoco.mjtObj.mjOBJ_JOINT, ARM_JOINT_NAMES), (mujoco.mjtObj.mjOBJ_SITE, (LEFT_EEF_SITE, RIGHT_EEF_SITE)),
              (mujoco.mjtObj.mjOBJ_BODY, (BOX_BODY, BASE_BODY)), (mujoco.mjtObj.mjOBJ_GEOM, (BOX_GEOM,)))
    for kind, names in needed:
        missing += [n for n in names if mujoco.mj_name2id(model, kind, n) < 0]
    if missing:
        raise ValueError(f"the MJCF lacks {missing} (see kuavo_rl.kuavo.model for the names it must have)")
    box_joint = model.body_jntadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, BOX_BODY)]
    if box_joint < 0 or model.jnt_type[box_joint] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError(f"body '{BOX_BODY}' needs a free joint")
    for name in ARM_JOINT_NAMES:
        actuator_for_joint(model, name)


def actuator_for_joint(model, joint_name: str) -> int:
    """Index of the one position actuator driving `joint_name`."""
    import mujoco

    jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint_name)
    found = [a for a in range(model.nu)
             if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT and model.actuator_trnid[a, 0] == jid]
    if len(found) != 1:
        raise ValueError(f"joint {joint_name} needs exactly one position actuator, found {len(found)}")
    return found[0]


def load_model(path: str | None = None):
    """mujoco.MjModel of our scene (path None) or of a user MJCF with the same names (checked)."""
    import mujoco

    model = mujoco.MjModel.from_xml_path(path) if path else mujoco.MjModel.from_xml_string(build_mjcf())
    check_model(model)
    return model
