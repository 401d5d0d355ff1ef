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
from kuavo_rl.kuavo.sim_server import CommandRefused, SimServer, state_of
from kuavo_rl.kuavo.task import HandPair, RobotState

ARM_JOINT_COMMAND_NAMES = [f"arm_joint_{i}" for i in range(1, 15)]  # /kuavo_arm_traj takes exactly 14


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


class SimLink:
    """The simulated Kuavo in this process, behind the same `SimServer` the kuavo_sim node serves (so
    it obeys and refuses commands exactly as the node does): lockstep, the simulation advances only
    while the bridge waits for the next state (fast, deterministic; for in-process diagnostics and tests)."""

    def __init__(self, kuavo: KuavoConfig, sim: KuavoSimConfig, seed: int | None = None):
        self.server = SimServer(kuavo, sim, seed=seed)

    @property
    def sim(self):
        return self.server.sim

    @property
    def mode(self) -> int:
        return self.server.mode

    def latest(self) -> RobotState:
        return state_of(self.sim)

    def newest_stamp(self) -> float:
        return self.sim.time

    def wait_for_state(self, stamp: float, timeout_s: float) -> RobotState:
        if self.sim.time < stamp - 1e-9:
            self.sim.advance(stamp - self.sim.time)
        return state_of(self.sim)

    @staticmethod
    def _obey(command, *args) -> None:
        try:
            command(*args)
        except CommandRefused as refusal:
            raise LinkError(str(refusal)) from refusal

    def send_hand_targets(self, hands: HandPair, quats: HandPair, frame: int) -> None:
        self._obey(self.server.hand_pose_command, hands.left, quats.left, hands.right, quats.right, frame)

    def send_joint_targets(self, arm_q_rad: np.ndarray) -> None:
        self._obey(self.server.joint_command, ARM_JOINT_COMMAND_NAMES, np.degrees(arm_q_rad))

    def set_control_mode(self, mode: int) -> None:
        result, now, message = self.server.change_mode(int(mode))
        if not result or now != mode:
            raise LinkError(f"control mode {mode} refused: {message}")

    def reset_scene(self, seed: int | None) -> None:
        self.server.reset_scene(-1 if seed is None else int(seed))

    def close(self) -> None:
        pass
