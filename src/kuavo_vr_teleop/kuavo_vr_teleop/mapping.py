"""Pure mappings from (frame at engage, current frame) to an action vector.

Each mapping states its action size, bounds, neutral ("hold still") action and which hands'
poses it needs; the safety core (teleop_core.py) enforces all of them, so a mapping only
has to describe the operator's intent.

Coordinates: OpenXR stage space is x right, y up, -z forward (from the operator); robot base
frames (REP-103) are x forward, y left, z up. ``XR_TO_ROBOT`` rotates the former into the
latter, assuming the operator faces the robot's forward direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .controller import ControllerFrame, HandState

XR_TO_ROBOT = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class Mapping(Protocol):
    name: str
    action_dim: int
    hands: tuple[str, ...]  # hands whose tracked pose the mapping needs
    low: np.ndarray
    high: np.ndarray
    neutral: np.ndarray

    def __call__(self, ref: ControllerFrame, cur: ControllerFrame) -> np.ndarray: ...


# -- small rotation helpers (quaternions are x, y, z, w) -------------------------------------
def quat_to_matrix(q: tuple[float, ...] | np.ndarray) -> np.ndarray:
    x, y, z, w = np.asarray(q, dtype=np.float64) / max(float(np.linalg.norm(q)), 1e-12)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 (one canonical sign, so outputs are stable)."""
    trace = float(np.trace(m))
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 1e-12))
        q = np.zeros(4)
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
        q[3] = (m[k, j] - m[j, k]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def position_delta(ref: HandState, cur: HandState) -> np.ndarray:
    """Controller displacement since engaging, in robot axes (metres)."""
    return XR_TO_ROBOT @ (np.asarray(cur.position, dtype=np.float64) - np.asarray(ref.position, dtype=np.float64))


def rotation_delta(ref: HandState, cur: HandState) -> np.ndarray:
    """Controller rotation since engaging (world-frame), in robot axes, as a quaternion."""
    rel = quat_to_matrix(cur.orientation) @ quat_to_matrix(ref.orientation).T
    return matrix_to_quat(XR_TO_ROBOT @ rel @ XR_TO_ROBOT.T)


# -- mappings -----------------------------------------------------------------------------------
TOY_CHANNELS = (
    "right.thumbstick.x",
    "right.thumbstick.y",
    "left.thumbstick.x",
    "left.thumbstick.y",
    "right.trigger",
    "left.trigger",
    "right.dx",
    "right.dy",
    "right.dz",
    "left.dx",
    "left.dy",
    "left.dz",
)


@dataclass
class ToyAxesMapping:
    """Any N-dim action in [-1, 1] from controller axes, for the toy target-action env.

    Dimension i takes channel ``TOY_CHANNELS[i]``: right stick x, y; left stick x, y; right
    trigger; left trigger; right controller dx, dy, dz; left dx, dy, dz (robot axes, metres
    divided by ``metres_per_unit``). Dimensions beyond the 12 channels stay 0.
    """

    action_dim: int
    metres_per_unit: float = 0.1
    name: str = "toy"

    def __post_init__(self) -> None:
        if self.action_dim < 1:
            raise ValueError("action_dim must be >= 1")
        self.low = -np.ones(self.action_dim, dtype=np.float32)
        self.high = np.ones(self.action_dim, dtype=np.float32)
        self.neutral = np.zeros(self.action_dim, dtype=np.float32)
        used = TOY_CHANNELS[: self.action_dim]
        self.hands = tuple(h for h in ("right", "left") if f"{h}.dx" in used)

    def __call__(self, ref: ControllerFrame, cur: ControllerFrame) -> np.ndarray:
        r, l = cur.right, cur.left
        channels = [*r.thumbstick, *l.thumbstick, r.trigger, l.trigger]
        channels += list(position_delta(ref.right, r) / self.metres_per_unit)
        channels += list(position_delta(ref.left, l) / self.metres_per_unit)
        out = np.zeros(self.action_dim, dtype=np.float64)
        n = min(self.action_dim, len(channels))
        out[:n] = channels[:n]
        return np.clip(out, -1.0, 1.0).astype(np.float32)


@dataclass
class EndEffectorDeltaMapping:
    """[dx, dy, dz, gripper] in [-1, 1] for an end-effector-delta env (e.g. PickLiftEnv).

    Rate control: the right controller's displacement from where it was when the clutch
    engaged, divided by ``metres_per_unit``, is the per-step end-effector command (hold the
    hand 5 cm forward with 0.05 m/unit -> full speed forward). Gripper (a per-step change of
    closure, as in gym-hil): +1 close while the right trigger is pressed, -1 open while the
    left trigger is pressed, 0 keep - so taking over never drops a grasped object.
    """

    metres_per_unit: float = 0.05
    trigger_threshold: float = 0.5
    name: str = "ee_delta"
    action_dim: int = 4
    hands: tuple[str, ...] = ("right",)
    low: np.ndarray = field(default_factory=lambda: -np.ones(4, dtype=np.float32))
    high: np.ndarray = field(default_factory=lambda: np.ones(4, dtype=np.float32))
    neutral: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.float32))

    def __call__(self, ref: ControllerFrame, cur: ControllerFrame) -> np.ndarray:
        xyz = position_delta(ref.right, cur.right) / self.metres_per_unit
        if cur.right.trigger > self.trigger_threshold:
            gripper = 1.0
        elif cur.left.trigger > self.trigger_threshold:
            gripper = -1.0
        else:
            gripper = 0.0
        return np.clip(np.append(xyz, gripper), -1.0, 1.0).astype(np.float32)


@dataclass
class TwoHandDeltaMapping:
    """[dx_l, dy_l, dz_l, dx_r, dy_r, dz_r] in [-1, 1] for the Kuavo bridge's end-effector-delta mode.

    Rate control per hand, as EndEffectorDeltaMapping: each controller's displacement from where it
    was when the clutch engaged, divided by ``metres_per_unit``, is that hand's per-step command
    (the bridge multiplies by its step size, clamps to the workspace and the speed limit).
    """

    metres_per_unit: float = 0.05
    name: str = "kuavo_ee_delta"
    action_dim: int = 6
    hands: tuple[str, ...] = ("left", "right")
    low: np.ndarray = field(default_factory=lambda: -np.ones(6, dtype=np.float32))
    high: np.ndarray = field(default_factory=lambda: np.ones(6, dtype=np.float32))
    neutral: np.ndarray = field(default_factory=lambda: np.zeros(6, dtype=np.float32))

    def __call__(self, ref: ControllerFrame, cur: ControllerFrame) -> np.ndarray:
        left = position_delta(ref.left, cur.left) / self.metres_per_unit
        right = position_delta(ref.right, cur.right) / self.metres_per_unit
        return np.clip(np.concatenate([left, right]), -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class HandTarget:
    """One Kuavo hand: target offset from its pose at engage (robot base axes, metres), the
    rotation since engage (quaternion x, y, z, w) and the hand closure 0 (open) .. 100 (closed),
    as Leju's robotHandPosition uses (the claw's scale is reversed; the bridge converts)."""

    position_delta: tuple[float, float, float]
    orientation_delta: tuple[float, float, float, float]
    gripper: float


@dataclass(frozen=True)
class KuavoArmsCommand:
    left: HandTarget
    right: HandTarget

    # Flat layout: [left dpos(3), left quat(4), left gripper, right dpos(3), right quat(4), right gripper]
    def to_vector(self) -> np.ndarray:
        parts = []
        for hand in (self.left, self.right):
            parts += [*hand.position_delta, *hand.orientation_delta, hand.gripper]
        return np.asarray(parts, dtype=np.float32)

    @classmethod
    def from_vector(cls, v: np.ndarray) -> KuavoArmsCommand:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (16,):
            raise ValueError(f"expected 16 values, got shape {v.shape}")

        def hand(a: np.ndarray) -> HandTarget:
            q = a[3:7] / max(float(np.linalg.norm(a[3:7])), 1e-12)  # rate limiting de-normalises
            return HandTarget(tuple(a[0:3]), tuple(q), float(a[7]))  # type: ignore[arg-type]

        return cls(hand(v[:8]), hand(v[8:]))


@dataclass
class KuavoArmsMapping:
    """Both controllers -> both Kuavo hands (for a bridge that runs Kuavo's IK).

    Motion is 1:1 times ``scale`` relative to the engage pose, so releasing and re-engaging
    the clutch lets the operator re-centre. Grippers follow the triggers (0..100).
    """

    scale: float = 1.0
    max_offset_m: float = 0.5
    name: str = "kuavo_arms"
    action_dim: int = 16
    hands: tuple[str, ...] = ("left", "right")

    def __post_init__(self) -> None:
        hand_low = [-self.max_offset_m] * 3 + [-1.0] * 4 + [0.0]
        hand_high = [self.max_offset_m] * 3 + [1.0] * 4 + [100.0]
        self.low = np.asarray(hand_low * 2, dtype=np.float32)
        self.high = np.asarray(hand_high * 2, dtype=np.float32)
        self.neutral = KuavoArmsCommand(
            HandTarget((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), 0.0),
            HandTarget((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), 0.0),
        ).to_vector()

    def command(self, ref: ControllerFrame, cur: ControllerFrame) -> KuavoArmsCommand:
        def hand(side: str) -> HandTarget:
            r, c = ref.hand(side), cur.hand(side)
            dpos = np.clip(position_delta(r, c) * self.scale, -self.max_offset_m, self.max_offset_m)
            return HandTarget(
                tuple(float(v) for v in dpos),  # type: ignore[arg-type]
                tuple(float(v) for v in rotation_delta(r, c)),  # type: ignore[arg-type]
                float(np.clip(c.trigger, 0.0, 1.0) * 100.0),
            )

        return KuavoArmsCommand(hand("left"), hand("right"))

    def __call__(self, ref: ControllerFrame, cur: ControllerFrame) -> np.ndarray:
        return self.command(ref, cur).to_vector()


MAPPINGS = ("toy", "ee_delta", "kuavo_ee_delta", "kuavo_arms")


def make_mapping(name: str, action_dim: int = 0, metres_per_unit: float | None = None) -> Mapping:
    """Mapping by name. ``action_dim`` 0 means the mapping's own size; otherwise it must match
    (toy accepts any size)."""
    if name == "toy":
        if action_dim < 1:
            raise ValueError("mapping 'toy' needs action_dim >= 1")
        return ToyAxesMapping(action_dim, **({"metres_per_unit": metres_per_unit} if metres_per_unit else {}))
    scale = {"metres_per_unit": metres_per_unit} if metres_per_unit else {}
    if name == "ee_delta":
        mapping: Mapping = EndEffectorDeltaMapping(**scale)
    elif name == "kuavo_ee_delta":
        mapping = TwoHandDeltaMapping(**scale)
    elif name == "kuavo_arms":
        mapping = KuavoArmsMapping()
    else:
        raise ValueError(f"unknown mapping {name!r}; choose one of {MAPPINGS}")
    if action_dim not in (0, mapping.action_dim):
        raise ValueError(f"mapping {name!r} produces {mapping.action_dim} values, but action_dim={action_dim}")
    return mapping
