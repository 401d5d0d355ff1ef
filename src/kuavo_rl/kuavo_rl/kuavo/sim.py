"""The Kuavo upper body in MuJoCo, driven like Leju's arm controller: joint or hand-pose targets.

Each control period (control_period_s, 10 Hz by default):
1. hand-target mode: the commanded hand points move toward the requested targets by at most
   hand_speed_limit_m_s * period, and IK (seeded with the previous solution) turns them into joint
   targets;
2. the joint setpoints move toward the joint targets by at most joint_speed_limit_rad_s * period;
3. physics runs `substeps` steps with the actuator commands interpolated linearly from the old to
   the new setpoints, so position actuators never see a step.
Joint-target and hand-target commands preempt each other (the latest kind wins), as on Leju's
controller. The box is randomised on every reset_scene (position, yaw, mass, friction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from kuavo_rl.kuavo.kinematics import ArmKinematics, HandPoses, quat_wxyz_to_xyzw, read_hand_poses
from kuavo_rl.kuavo.model import (ARM_JOINT_NAMES, ARM_JOINT_SLICE, BOX_BODY, BOX_GEOM, DEFAULT_HAND_QUAT_XYZW,
                                  HOME_ARM_Q, LEFT_EEF_SITE, NUM_JOINTS, RIGHT_EEF_SITE, actuator_for_joint,
                                  load_model)


@dataclass
class SimConfig:
    control_period_s: float = 0.1  # one command period (10 Hz)
    substeps: int = 50  # physics steps per control period
    joint_speed_limit_rad_s: float = 2.0
    hand_speed_limit_m_s: float = 0.25
    box_position_jitter_m: float = 0.03  # box centre x, y uniform within +- this of its nominal place
    box_yaw_jitter_rad: float = math.radians(10)
    box_mass_range: tuple[float, float] = (0.5, 2.0)  # kg
    box_friction_range: tuple[float, float] = (0.3, 1.0)  # sliding friction of every box contact
    model_path: str = ""  # optional user MJCF (names: see kuavo_rl.kuavo.model); its timestep is replaced
    # by control_period_s / substeps

    def validate(self) -> None:
        if not (self.control_period_s > 0 and self.substeps >= 1):
            raise ValueError("control_period_s must be > 0 and substeps >= 1")
        if not (self.joint_speed_limit_rad_s > 0 and self.hand_speed_limit_m_s > 0):
            raise ValueError("speed limits must be > 0")
        if self.box_position_jitter_m < 0 or self.box_yaw_jitter_rad < 0:
            raise ValueError("jitters must be >= 0")
        for name in ("box_mass_range", "box_friction_range"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high")


def finite_vector(values, size: int, name: str) -> np.ndarray:
    """values as a float vector of `size`; ValueError if the size is wrong or anything is NaN/inf."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != size:
        raise ValueError(f"{name} must have {size} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf: {arr.tolist()}")
    return arr


def _unit_quat(values, name: str) -> np.ndarray:
    q = finite_vector(values, 4, name)
    norm = np.linalg.norm(q)
    if norm < 1e-9:
        raise ValueError(f"{name} is not a rotation (zero quaternion)")
    return q / norm


def _step_toward(current: np.ndarray, target: np.ndarray, max_distance: float) -> np.ndarray:
    """Move a point at most max_distance (Euclidean) toward target, along the straight line."""
    delta = target - current
    distance = float(np.linalg.norm(delta))
    if distance <= max_distance:
        return target.copy()
    return current + delta * (max_distance / distance)


class KuavoSim:
    """Public state besides the methods: `time` (simulated s since construction), `last_ik_converged`
    (the latest hand-target IK), `box_mass` / `box_friction` (this scene's draw), and `model`, `data`,
    `kinematics` for diagnostics."""

    def __init__(self, cfg: SimConfig | None = None, seed: int | None = None) -> None:
        self.cfg = cfg if cfg is not None else SimConfig()
        self.cfg.validate()
        self.model = load_model(self.cfg.model_path or None)
        self.model.opt.timestep = self.cfg.control_period_s / self.cfg.substeps
        self.data = mujoco.MjData(self.model)
        self.kinematics = ArmKinematics(self.model)
        self.time = 0.0  # simulated seconds since construction (resets do not rewind it)
        self.last_ik_converged = True
        self._rng = np.random.default_rng(seed)
        self._lookup_ids()
        self.reset_scene()

    def _lookup_ids(self) -> None:
        m = self.model
        joint_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in ARM_JOINT_NAMES]
        self._arm_qpos = m.jnt_qposadr[joint_ids]
        self._arm_qvel = m.jnt_dofadr[joint_ids]
        self._arm_actuators = np.array([actuator_for_joint(m, n) for n in ARM_JOINT_NAMES])
        self._sites = (mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, LEFT_EEF_SITE),
                       mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, RIGHT_EEF_SITE))
        self._box_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, BOX_BODY)
        self._box_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, BOX_GEOM)
        self._box_qpos = m.jnt_qposadr[m.body_jntadr[self._box_body]]
        # The box's place in the MJCF is its nominal place; its mass and inertia there scale together.
        self._box_nominal_position = m.body_pos[self._box_body].copy()
        self._box_nominal_mass = float(m.body_mass[self._box_body])
        self._box_nominal_inertia = m.body_inertia[self._box_body].copy()

    # -- scene -----------------------------------------------------------------------------------
    def reset_scene(self, seed: int | None = None) -> None:
        """Arms at HOME_ARM_Q (targets too), the box at a random place, yaw, mass and friction."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self._randomise_box()
        self.data.qpos[self._arm_qpos] = HOME_ARM_Q
        self._setpoint = HOME_ARM_Q.copy()
        self._joint_target = HOME_ARM_Q.copy()
        self.data.ctrl[self._arm_actuators] = HOME_ARM_Q
        self._mode = "joint"
        self._ik_seed = HOME_ARM_Q.copy()
        self.last_ik_converged = True
        mujoco.mj_forward(self.model, self.data)

    def _randomise_box(self) -> None:
        cfg, rng = self.cfg, self._rng
        jitter = cfg.box_position_jitter_m
        position = self._box_nominal_position + np.array([*rng.uniform(-jitter, jitter, 2), 0.0])
        yaw = rng.uniform(-cfg.box_yaw_jitter_rad, cfg.box_yaw_jitter_rad)
        self.box_mass = float(rng.uniform(*cfg.box_mass_range))
        self.box_friction = float(rng.uniform(*cfg.box_friction_range))
        self.model.body_mass[self._box_body] = self.box_mass
        self.model.body_inertia[self._box_body] = self._box_nominal_inertia * (self.box_mass / self._box_nominal_mass)
        self.model.geom_friction[self._box_geom, 0] = self.box_friction
        adr = self._box_qpos
        self.data.qpos[adr:adr + 3] = position
        self.data.qpos[adr + 3:adr + 7] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]  # wxyz about z

    # -- commands --------------------------------------------------------------------------------
    def set_joint_targets(self, arm_q14_rad) -> None:
        """14 arm joint targets (rad, left arm first), clamped to the joint limits."""
        q = finite_vector(arm_q14_rad, 14, "arm_q14_rad")
        self._joint_target = np.clip(q, self.kinematics.lower, self.kinematics.upper)
        self._mode = "joint"

    def set_hand_targets(self, left_pos, right_pos, left_quat_xyzw=None, right_quat_xyzw=None) -> None:
        """Hand-point targets (world frame); a None orientation means DEFAULT_HAND_QUAT_XYZW."""
        goal = (finite_vector(left_pos, 3, "left_pos"), finite_vector(right_pos, 3, "right_pos"))
        quats = (_unit_quat(DEFAULT_HAND_QUAT_XYZW["left"] if left_quat_xyzw is None else left_quat_xyzw,
                            "left_quat_xyzw"),
                 _unit_quat(DEFAULT_HAND_QUAT_XYZW["right"] if right_quat_xyzw is None else right_quat_xyzw,
                            "right_quat_xyzw"))
        if self._mode != "hand":
            # Coming from joint mode: the rate-limited hand path starts where the arms are commanded.
            commanded = self.kinematics.fk(self._setpoint)
            self._hand_command = [commanded.left_pos, commanded.right_pos]
            self._ik_seed = self._setpoint.copy()
        self._hand_goal, self._hand_quat = goal, quats
        self._mode = "hand"

    # -- physics ---------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Run physics for `seconds` (rounded to whole physics steps), tracking the current targets."""
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be finite and >= 0, got {seconds}")
        remaining = int(round(seconds / self.model.opt.timestep))
        while remaining > 0:
            steps = min(self.cfg.substeps, remaining)
            self._run_period(steps)
            remaining -= steps
        mujoco.mj_forward(self.model, self.data)  # measured state (sites, contacts) matches qpos

    def _run_period(self, steps: int) -> None:
        period = steps * self.model.opt.timestep
        if self._mode == "hand":
            self._hand_targets_to_joint_targets(period)
        max_move = self.cfg.joint_speed_limit_rad_s * period
        old = self._setpoint
        new = old + np.clip(self._joint_target - old, -max_move, max_move)
        for i in range(steps):
            self.data.ctrl[self._arm_actuators] = old + (new - old) * ((i + 1) / steps)
            mujoco.mj_step(self.model, self.data)
        self._setpoint = new
        self.time += period

    def _hand_targets_to_joint_targets(self, period: float) -> None:
        max_move = self.cfg.hand_speed_limit_m_s * period
        for hand in (0, 1):
            self._hand_command[hand] = _step_toward(self._hand_command[hand], self._hand_goal[hand], max_move)
        q, converged, _ = self.kinematics.ik(self._hand_command[0], self._hand_command[1],
                                             self._hand_quat[0], self._hand_quat[1], self._ik_seed)
        self.last_ik_converged = converged
        self._ik_seed = q
        self._joint_target = q

    # -- measurements ----------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        """(28,) rad in Leju's sensor order; the arms at 12..25, legs and head 0 (not simulated)."""
        q = np.zeros(NUM_JOINTS)
        q[ARM_JOINT_SLICE] = self.data.qpos[self._arm_qpos]
        return q

    def joint_velocities(self) -> np.ndarray:
        qd = np.zeros(NUM_JOINTS)
        qd[ARM_JOINT_SLICE] = self.data.qvel[self._arm_qvel]
        return qd

    def hand_poses(self) -> HandPoses:
        """Measured hand points (sites left_eef / right_eef), world frame."""
        return read_hand_poses(self.data, *self._sites)

    def box_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Box centre (3,) and orientation quat_xyzw (4,), world frame."""
        adr = self._box_qpos
        return self.data.qpos[adr:adr + 3].copy(), quat_wxyz_to_xyzw(self.data.qpos[adr + 3:adr + 7])

    def arm_joint_targets(self) -> np.ndarray:
        """(14,) the joint setpoints the actuators are tracking now (after rate limiting)."""
        return self._setpoint.copy()
