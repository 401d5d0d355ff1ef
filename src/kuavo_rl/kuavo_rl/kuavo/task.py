"""The Kuavo box-lift task without a robot: workspace, start poses, grasp geometry, reward terms and
the observation layout. Positions are numpy (3,) arrays; "base" positions are in the robot's torso
frame, a pure translation of world for the fixed-base Kuavo."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kuavo_rl.kuavo.settings import OBSERVATION_BLOCKS, KuavoConfig

MIRROR_Y = np.array([1.0, -1.0, 1.0])
REWARD_TERM_NAMES = ("hand_left_sq", "hand_right_sq", "box_sq", "success", "failure")
# The Kuavo team's reward: 10 * (-(mse_left + mse_right) - 3 * mse_box + 3 * success - failure).
TEAM_REWARD_WEIGHTS = {"hand_left_sq": -10.0, "hand_right_sq": -10.0, "box_sq": -30.0, "success": 30.0,
                       "failure": -10.0}
ARM_JOINTS = slice(12, 26)  # the arms in Leju's 28-joint sensor vector: left 12-18, right 19-25


@dataclass
class RobotState:
    """One complete reading of the robot, all in SI units and the world frame."""
    stamp: float  # the robot's clock (s): the oldest of the sources that make up this state
    joint_q: np.ndarray  # (28,) rad, Leju's joint order
    left_hand: np.ndarray  # (3,) m
    right_hand: np.ndarray  # (3,) m
    box_position: np.ndarray  # (3,) m
    box_quat_xyzw: np.ndarray  # (4,)

    @property
    def arm_q(self) -> np.ndarray:
        return self.joint_q[ARM_JOINTS]


@dataclass
class HandPair:
    left: np.ndarray  # (3,)
    right: np.ndarray  # (3,)

    def copy(self) -> HandPair:
        return HandPair(self.left.copy(), self.right.copy())


# ---- workspace and commands -------------------------------------------------------------------
class Workspace:
    """Axis-aligned boxes (base frame) the hand targets must stay in; the right one mirrors the left."""

    def __init__(self, cfg: KuavoConfig):
        low, high = np.asarray(cfg.workspace_low, float), np.asarray(cfg.workspace_high, float)
        self.left = (low, high)
        self.right = (np.array([low[0], -high[1], low[2]]), np.array([high[0], -low[1], high[2]]))

    def clamp(self, hands: HandPair) -> HandPair:
        return HandPair(np.clip(hands.left, *self.left), np.clip(hands.right, *self.right))

    def contains(self, hands: HandPair, tolerance: float = 1e-9) -> bool:
        return all(np.all(p >= lo - tolerance) and np.all(p <= hi + tolerance)
                   for p, (lo, hi) in ((hands.left, self.left), (hands.right, self.right)))


def limit_step(current: np.ndarray, target: np.ndarray, max_step: float) -> np.ndarray:
    """Move from current toward target by at most max_step (Euclidean)."""
    delta = target - current
    distance = float(np.linalg.norm(delta))
    return target.copy() if distance <= max_step else current + delta * (max_step / distance)


def next_hand_targets(commanded: HandPair, action: np.ndarray, cfg: KuavoConfig, workspace: Workspace) -> HandPair:
    """ee_delta: action (6,) in [-1, 1] -> the next commanded targets (base frame), speed- and workspace-limited."""
    wanted = HandPair(commanded.left + action[:3] * cfg.ee_step_m, commanded.right + action[3:6] * cfg.ee_step_m)
    limited = HandPair(limit_step(commanded.left, wanted.left, cfg.max_hand_step_m),
                       limit_step(commanded.right, wanted.right, cfg.max_hand_step_m))
    return workspace.clamp(limited)


def next_joint_targets(commanded_q: np.ndarray, action: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                       cfg: KuavoConfig) -> np.ndarray:
    """joint: action (14,) in [-1, 1] spans each joint's range (minus the margin); speed-limited per step."""
    low, high = lower + cfg.joint_limit_margin_rad, upper - cfg.joint_limit_margin_rad
    wanted = low + (action + 1.0) * 0.5 * (high - low)
    step = np.clip(wanted - commanded_q, -cfg.max_joint_step_rad, cfg.max_joint_step_rad)
    return np.clip(commanded_q + step, low, high)


def sample_start(cfg: KuavoConfig, rng: np.random.Generator, workspace: Workspace) -> HandPair:
    """Random start poses (base frame): each hand drawn independently, the right from the mirrored range."""
    low, high = np.asarray(cfg.start_low, float), np.asarray(cfg.start_high, float)
    left = rng.uniform(low, high)
    right = rng.uniform(low, high) * MIRROR_Y
    return workspace.clamp(HandPair(left, right))


# ---- task geometry and reward terms -----------------------------------------------------------
def side_targets(cfg: KuavoConfig, box_position: np.ndarray, inset_m: float) -> HandPair:
    """Palm targets (world) on the box's two y faces, inset_m inside them (negative: outside), at grasp height."""
    half_y = cfg.box_size[1] / 2.0
    offset = np.array([0.0, half_y - inset_m, cfg.grasp_height_m])
    return HandPair(box_position + offset, box_position + offset * MIRROR_Y)


def grasp_targets(cfg: KuavoConfig, box_position: np.ndarray) -> HandPair:
    return side_targets(cfg, box_position, cfg.squeeze_m)


def pregrasp_targets(cfg: KuavoConfig, box_position: np.ndarray) -> HandPair:
    return side_targets(cfg, box_position, -cfg.pregrasp_clearance_m)


def _mean_sq(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


@dataclass
class Outcome:
    terms: np.ndarray  # (5,) float32, REWARD_TERM_NAMES
    success: bool
    failure: bool

    @property
    def team_reward(self) -> float:
        return float(sum(w * self.terms[REWARD_TERM_NAMES.index(n)] for n, w in TEAM_REWARD_WEIGHTS.items()))


class TaskJudge:
    """Reward terms, success and failure of one episode, from robot states (world frame)."""

    def __init__(self, cfg: KuavoConfig, box_start: np.ndarray):
        self.cfg = cfg
        self.box_start = np.asarray(box_start, float).copy()
        self.box_goal = self.box_start + np.array([0.0, 0.0, cfg.lift_m])

    def hand_targets(self, state: RobotState) -> HandPair:
        if self.cfg.task == "reach":  # the pre-grasp poses beside the box where it started
            return pregrasp_targets(self.cfg, self.box_start)
        return grasp_targets(self.cfg, state.box_position)

    def judge(self, state: RobotState) -> Outcome:
        targets = self.hand_targets(state)
        box_z = float(state.box_position[2])
        failure = box_z < self.box_start[2] - self.cfg.drop_m
        if self.cfg.task == "reach":
            close = max(np.linalg.norm(state.left_hand - targets.left), np.linalg.norm(state.right_hand - targets.right))
            success = bool(close <= self.cfg.reach_tolerance_m) and not failure
        else:
            success = box_z >= self.box_goal[2] and not failure
        terms = np.array([_mean_sq(state.left_hand, targets.left), _mean_sq(state.right_hand, targets.right),
                          _mean_sq(state.box_position, self.box_goal), float(success), float(failure)], np.float32)
        return Outcome(terms, success, failure)


# ---- observation ------------------------------------------------------------------------------
_AXES = ("x", "y", "z")


def observation_names(layout: list[str], arm_joint_names: tuple[str, ...]) -> list[str]:
    """One name per observation index, e.g. hand_left_world.x, arm_joints.zarm_l1_joint, box_yaw."""
    names = []
    for block in layout:
        size = OBSERVATION_BLOCKS[block]
        if block == "arm_joints":
            names += [f"arm_joints.{joint}" for joint in arm_joint_names]
        elif size == 3:
            names += [f"{block}.{axis}" for axis in _AXES]
        else:
            names.append(block)
    return names


def yaw_of(quat_xyzw: np.ndarray) -> float:
    x, y, z, w = quat_xyzw
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def assemble_observation(layout: list[str], state: RobotState, base: np.ndarray, commanded: HandPair) -> np.ndarray:
    blocks = {
        "hand_left_world": lambda: state.left_hand, "hand_right_world": lambda: state.right_hand,
        "arm_joints": lambda: state.arm_q, "base_position": lambda: base,
        "hand_left_base": lambda: state.left_hand - base, "hand_right_base": lambda: state.right_hand - base,
        "box_position": lambda: state.box_position, "box_yaw": lambda: [yaw_of(state.box_quat_xyzw)],
        "hand_left_target_base": lambda: commanded.left, "hand_right_target_base": lambda: commanded.right,
    }
    return np.concatenate([np.asarray(blocks[name](), np.float64).ravel() for name in layout]).astype(np.float32)
