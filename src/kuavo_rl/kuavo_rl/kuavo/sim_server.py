"""What the simulated Kuavo does with the real robot's commands and services, without ROS: the
kuavo_sim node is a thin shell around `SimServer`.

As on the real robot: arm commands are followed only in external control mode (2);
/kuavo_arm_traj takes exactly 14 positions in degrees; the hand-pose command takes frame 1
(world) or 2 (local, the torso frame). Anything else is refused with the reason (`CommandRefused`).
"""
from __future__ import annotations

import numpy as np

from kuavo_rl.kuavo.settings import KuavoConfig, KuavoSimConfig
from kuavo_rl.kuavo.task import RobotState

EXTERNAL_CONTROL = 2
START_MODE = 1  # Leju's arms start in "auto swing"; the bridge must switch to external control


class CommandRefused(ValueError):
    pass


def _finite(values, size: int, what: str) -> np.ndarray:
    array = np.asarray(values, np.float64).ravel()
    if array.shape != (size,):
        raise CommandRefused(f"{what} needs {size} values, got {array.shape[0]}")
    if not np.all(np.isfinite(array)):
        raise CommandRefused(f"{what} contains NaN or inf")
    return array


def sim_config(sim: KuavoSimConfig, control_period_s: float):
    """The simulator's own settings from the experiment's env.kuavo_sim section."""
    import math

    from kuavo_rl.kuavo.sim import SimConfig
    return SimConfig(control_period_s=control_period_s, substeps=sim.substeps,
                     joint_speed_limit_rad_s=sim.joint_speed_limit_rad_s, hand_speed_limit_m_s=sim.hand_speed_limit_m_s,
                     box_position_jitter_m=sim.box_position_jitter_m, box_yaw_jitter_rad=math.radians(sim.box_yaw_jitter_deg),
                     box_mass_range=tuple(sim.box_mass_range), box_friction_range=tuple(sim.box_friction_range),
                     model_path=sim.model_path)


def state_of(sim) -> RobotState:
    """The simulated Kuavo's reading, as the robot's topics would report it."""
    hands = sim.hand_poses()
    box_position, box_quat = sim.box_pose()
    return RobotState(stamp=sim.time, joint_q=sim.joint_positions(), left_hand=np.asarray(hands.left_pos, float),
                      right_hand=np.asarray(hands.right_pos, float), box_position=np.asarray(box_position, float),
                      box_quat_xyzw=np.asarray(box_quat, float))


class SimServer:
    def __init__(self, kuavo: KuavoConfig, sim: KuavoSimConfig, seed: int | None = None):
        from kuavo_rl.kuavo.sim import KuavoSim
        self.period_s = kuavo.control_period_s
        self.sim = KuavoSim(sim_config(sim, kuavo.control_period_s), seed=seed)
        self.base = np.asarray(kuavo.base_position, float)
        self.mode = START_MODE
        self.commands = {"accepted": 0, "refused": 0}

    def _require_external_control(self) -> None:
        if self.mode != EXTERNAL_CONTROL:
            raise CommandRefused(f"arm control mode is {self.mode}, not {EXTERNAL_CONTROL} (external control): ignored")

    def joint_command(self, names, positions_deg) -> None:
        """/kuavo_arm_traj: exactly 14 names and positions, degrees."""
        if len(names) != 14:
            raise CommandRefused(f"/kuavo_arm_traj needs 14 joint names, got {len(names)}")
        q_deg = _finite(positions_deg, 14, "/kuavo_arm_traj positions")
        self._require_external_control()
        self.sim.set_joint_targets(np.radians(q_deg))

    def hand_pose_command(self, left_pos, left_quat, right_pos, right_quat, frame: int) -> None:
        if frame not in (1, 2):
            raise CommandRefused(f"hand pose frame {frame} is not supported (1 world, 2 local)")
        left, right = _finite(left_pos, 3, "left pos_xyz"), _finite(right_pos, 3, "right pos_xyz")
        quats = [_finite(q, 4, "quat_xyzw") for q in (left_quat, right_quat)]
        if any(np.linalg.norm(q) < 1e-6 for q in quats):
            raise CommandRefused("quat_xyzw must not be zero")
        self._require_external_control()
        offset = self.base if frame == 2 else np.zeros(3)
        self.sim.set_hand_targets(left + offset, right + offset, *(q / np.linalg.norm(q) for q in quats))

    def count(self, accepted: bool) -> None:
        self.commands["accepted" if accepted else "refused"] += 1

    def change_mode(self, mode: int) -> tuple[bool, int, str]:
        if mode not in (0, 1, 2):
            return False, self.mode, f"unknown arm control mode {mode} (0 keep pose, 1 auto swing, 2 external control)"
        if mode != EXTERNAL_CONTROL:  # keep pose / swing: hold where the arms are now
            self.sim.set_joint_targets(self.sim.joint_positions()[12:26])
        self.mode = mode
        return True, mode, f"arm control mode {mode}"

    def reset_scene(self, seed: int) -> tuple[bool, str]:
        """New scene, then one control period of settling: the state after a reset carries a new stamp,
        so a client can tell it from the state before."""
        self.sim.reset_scene(None if seed < 0 else seed)
        self.advance()
        return True, "scene reset"

    def advance(self, seconds: float | None = None) -> None:
        self.sim.advance(self.period_s if seconds is None else seconds)

    def reading(self) -> tuple[RobotState, np.ndarray]:
        """The state and the 28 joint velocities."""
        return state_of(self.sim), self.sim.joint_velocities()
