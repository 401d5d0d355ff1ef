"""The robot-facing side of the Kuavo bridge, behind one small interface.

`RobotLink` is everything the bridge asks of a Kuavo: the latest complete state, a state one
control period after now, hand-pose and joint commands, the arm control-mode service and the
scene reset. Implementations: `SimLink` (the simulated Kuavo in this process, lockstep) and
`ros2_link.Ros2Link` (Leju's topics and services over DDS: the kuavo_sim node, or a robot through
ros1_bridge). A ROS 1 (rospy) link would be a third.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from kuavo_rl.kuavo.settings import KuavoConfig, KuavoSimConfig
from kuavo_rl.kuavo.task import HandPair, RobotState


class LinkError(RuntimeError):
    """A command or service call the robot did not accept (the answer is in the message)."""


class RobotLink(Protocol):
    def latest(self) -> RobotState | None:
        """The newest complete state, or None when a source is missing or older than the stale timeout."""

    def newest_stamp(self) -> float:
        """The robot-clock stamp of the newest reading (-inf before the first). Taken before a command
        is sent, plus one control period, it names the state that shows the command's effect."""

    def wait_for_state(self, stamp: float, timeout_s: float) -> RobotState | None:
        """A complete state stamped at `stamp` or later; None when none arrives within timeout_s (wall clock)."""

    def send_hand_targets(self, hands: HandPair, quats: HandPair, frame: int) -> None:
        """Palm positions in `frame` (1 world, 2 base) and orientations (world, xyzw)."""

    def send_joint_targets(self, arm_q_rad: np.ndarray) -> None:
        """14 arm joint targets (rad; converted to the robot's units by the link)."""

    def set_control_mode(self, mode: int) -> None:
        """Call the arm control-mode service; raise LinkError unless the robot confirms the mode."""

    def reset_scene(self, seed: int | None) -> None:
        """Call the scene-reset service; raise LinkError unless it succeeds."""

    def close(self) -> None: ...


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


class SimLink:
    """The simulated Kuavo in this process: lockstep, the simulation advances only while the bridge
    waits for the next state (fast, deterministic; for in-process diagnostics and tests)."""

    def __init__(self, kuavo: KuavoConfig, sim: KuavoSimConfig, seed: int | None = None):
        from kuavo_rl.kuavo.sim import KuavoSim
        self.sim = KuavoSim(sim_config(sim, kuavo.control_period_s), seed=seed)
        self.period_s = kuavo.control_period_s
        self.base = np.asarray(kuavo.base_position, float)
        self.mode = 0
        self.external_control_mode = kuavo.external_control_mode

    def latest(self) -> RobotState:
        return state_of(self.sim)

    def newest_stamp(self) -> float:
        return self.sim.time

    def wait_for_state(self, stamp: float, timeout_s: float) -> RobotState:
        if self.sim.time < stamp - 1e-9:
            self.sim.advance(stamp - self.sim.time)
        return state_of(self.sim)

    def _require_external_control(self) -> None:
        if self.mode != self.external_control_mode:
            raise LinkError(f"arm commands are ignored in control mode {self.mode}")

    def send_hand_targets(self, hands: HandPair, quats: HandPair, frame: int) -> None:
        self._require_external_control()
        offset = self.base if frame == 2 else np.zeros(3)
        self.sim.set_hand_targets(hands.left + offset, hands.right + offset, quats.left, quats.right)

    def send_joint_targets(self, arm_q_rad: np.ndarray) -> None:
        self._require_external_control()
        self.sim.set_joint_targets(arm_q_rad)

    def set_control_mode(self, mode: int) -> None:
        self.mode = int(mode)

    def reset_scene(self, seed: int | None) -> None:
        self.sim.reset_scene(seed)
        self.sim.advance(self.period_s)  # as the kuavo_sim node: the state after a reset has a new stamp

    def close(self) -> None:
        pass
