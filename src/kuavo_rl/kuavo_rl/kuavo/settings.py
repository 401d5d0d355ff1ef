"""The Kuavo env's configuration: `env.kuavo` (the bridge to a Kuavo, real or simulated) and
`env.kuavo_sim` (the simulated Kuavo). Pure data: the config schema reads it without MuJoCo or ROS.

Frames: "world" has z up from the floor; "base" is the robot's torso frame (fixed base: a pure
translation of world). Positions of the left hand are given; the right hand mirrors them in y.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field

ACTION_MODES = ("ee_delta", "joint")
TASKS = ("box_lift", "reach")
LINKS = ("ros2", "inprocess")
HAND_POSE_SOURCES = ("topics", "fk")
# One observation block per name; the default is the 32-value layout the Kuavo box-lift team trained on.
OBSERVATION_BLOCKS = {
    "hand_left_world": 3, "hand_right_world": 3, "arm_joints": 14, "base_position": 3,
    "hand_left_base": 3, "hand_right_base": 3, "box_position": 3, "box_yaw": 1,
    "hand_left_target_base": 3, "hand_right_target_base": 3,
}
DEFAULT_OBSERVATION_LAYOUT = ["hand_left_world", "hand_right_world", "arm_joints", "base_position",
                              "hand_left_base", "hand_right_base", "box_position"]


@dataclass
class KuavoConfig:
    """The bridge: env protocol on one side, the Kuavo's own topics and services on the other."""
    link: str = "ros2"  # ros2: Leju's topics over DDS (the robot, or the kuavo_sim node) | inprocess: the sim in this process
    task: str = "box_lift"  # box_lift | reach (hands to the pre-grasp poses beside the box)
    action_mode: str = "ee_delta"  # ee_delta: 6 hand-position deltas | joint: 14 absolute arm joint targets
    ee_step_m: float = 0.01  # ee_delta: an action of 1 moves a hand target this far per step
    observation_layout: list[str] = field(default_factory=lambda: list(DEFAULT_OBSERVATION_LAYOUT))
    # Safety limits applied to every command, whatever the policy (or operator) outputs.
    # Left hand, base frame (m): holds every start pose, the pre-grasp, the squeeze and the lift of the
    # simulated Kuavo's box; the hands never cross the midline. Measure your robot's before using it.
    workspace_low: list[float] = field(default_factory=lambda: [0.15, 0.0, -0.05])
    workspace_high: list[float] = field(default_factory=lambda: [0.45, 0.50, 0.30])
    max_hand_step_m: float = 0.025  # per control step (0.25 m/s at 10 Hz)
    max_joint_step_rad: float = 0.2  # joint mode: per control step (2 rad/s at 10 Hz)
    joint_limit_margin_rad: float = 0.02  # joint targets stay this far inside the limits
    hand_quat_left: list[float] = field(default_factory=list)  # fixed hand orientation (xyzw, world); [] = the model's
    hand_quat_right: list[float] = field(default_factory=list)
    command_frame: int = 2  # TwoArmHandPoseCmd.frame: 1 world, 2 local (base)
    # Leju's topics and services.
    sensors_topic: str = "/sensors_data_raw"
    hand_pose_cmd_topic: str = "/ik/two_arm_hand_pose_cmd"  # or /mm/two_arm_hand_pose_cmd (mobile manipulator MPC)
    joint_cmd_topic: str = "/kuavo_arm_traj"
    hand_pose_source: str = "topics"  # topics (PoseStamped pair below) | fk (forward kinematics of the joints)
    left_hand_pose_topic: str = "/fk/eef_pose_left"
    right_hand_pose_topic: str = "/fk/eef_pose_right"
    box_pose_topic: str = "/box_real_pose"
    mode_service: str = "/arm_traj_change_mode"
    external_control_mode: int = 2  # changeArmCtrlMode: 2 = external control, set at start
    stop_control_mode: int = 0  # set at stop: 0 = keep pose
    scene_reset_service: str = ""  # "" = none (a robot: the operator resets the scene); the sim's is /kuavo_sim/reset_scene
    # Each reset waits until the operator confirms the scene is ready (the box back on the table):
    # a call of the env node's /kuavo_rl/env/confirm_reset service (kuavo_msgs/ConfirmReset).
    confirm_reset: bool = False
    service_timeout_s: float = 5.0
    base_position: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.82])  # world; fixed base
    # Timing and staleness.
    control_period_s: float = 0.1  # 10 Hz: an observation is taken one period after its command
    stale_timeout_s: float = 0.5  # no fresh robot state for this long: hold, report, wait
    # Reset: random start poses (left hand, base frame; clamped to the workspace), settle check. The Kuavo
    # team drew x 0.2-0.5, y 0.3-0.6, z -0.05-0.3, partly out of reach with the fingers forward; this
    # is the part the arms reach.
    start_low: list[float] = field(default_factory=lambda: [0.20, 0.30, 0.00])
    start_high: list[float] = field(default_factory=lambda: [0.35, 0.45, 0.25])
    settle_tolerance_m: float = 0.02
    settle_timeout_s: float = 10.0  # robot time
    # Task geometry and reward terms (hand_left_sq, hand_right_sq, box_sq, success, failure).
    box_size: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.20])
    grasp_height_m: float = 0.02  # palms this far above the box centre
    squeeze_m: float = 0.04  # palms commanded this far inside the box faces (the grip force: ~12 N/cm per palm)
    pregrasp_clearance_m: float = 0.06  # reach task / pre-grasp: palms this far outside the box faces
    lift_m: float = 0.10  # success: box centre this far above its start height
    drop_m: float = 0.10  # failure: box centre this far below its start height (fell)
    reach_tolerance_m: float = 0.03  # reach task: success when both hands are this close to their targets


@dataclass
class KuavoSimConfig:
    """The simulated Kuavo (MuJoCo): `kuavo_sim` node, or in-process with env.kuavo.link: inprocess."""
    timing: str = "lockstep"  # lockstep: one control period per command (fast) | realtime: the wall clock
    publish_rate_hz: float = 100.0  # realtime: state topics at this rate
    idle_republish_s: float = 0.1  # lockstep: resend the state this often while no command arrives
    substeps: int = 50
    joint_speed_limit_rad_s: float = 2.0
    hand_speed_limit_m_s: float = 0.25
    box_position_jitter_m: float = 0.03
    box_yaw_jitter_deg: float = 10.0
    box_mass_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    box_friction_range: list[float] = field(default_factory=lambda: [0.3, 1.0])
    model_path: str = ""  # a user MJCF (e.g. Leju's own model) with the joint and site names of ours
    reset_service: str = "/kuavo_sim/reset_scene"


def layout_size(layout: typing.Sequence[str]) -> int:
    return sum(OBSERVATION_BLOCKS[name] for name in layout)


def validate_kuavo(kuavo: KuavoConfig, sim: KuavoSimConfig, require) -> None:
    """`require(condition, message)` raises the config error."""
    def one_of(value, allowed, key):
        require(value in allowed, f"env.kuavo.{key} must be one of {', '.join(allowed)}, got '{value}'")

    one_of(kuavo.link, LINKS, "link")
    one_of(kuavo.task, TASKS, "task")
    one_of(kuavo.action_mode, ACTION_MODES, "action_mode")
    one_of(kuavo.hand_pose_source, HAND_POSE_SOURCES, "hand_pose_source")
    unknown = [b for b in kuavo.observation_layout if b not in OBSERVATION_BLOCKS]
    require(not unknown and kuavo.observation_layout,
            f"env.kuavo.observation_layout: unknown blocks {unknown} (known: {', '.join(OBSERVATION_BLOCKS)})")
    require(len(set(kuavo.observation_layout)) == len(kuavo.observation_layout),
            "env.kuavo.observation_layout lists a block twice")
    for key in ("workspace_low", "workspace_high", "start_low", "start_high", "base_position", "box_size"):
        require(len(getattr(kuavo, key)) == 3, f"env.kuavo.{key} must have 3 values (x, y, z)")
    require(all(lo < hi for lo, hi in zip(kuavo.workspace_low, kuavo.workspace_high)),
            "env.kuavo.workspace_low must be below workspace_high in x, y and z")
    require(all(lo <= hi for lo, hi in zip(kuavo.start_low, kuavo.start_high)),
            "env.kuavo.start_low must not exceed start_high")
    require(kuavo.workspace_low[1] >= 0,
            "env.kuavo.workspace_low y must be >= 0: the left hand's box is mirrored for the right hand, "
            "and the two must not overlap")
    for key in ("hand_quat_left", "hand_quat_right"):
        require(len(getattr(kuavo, key)) in (0, 4), f"env.kuavo.{key} must be [] or 4 values (x, y, z, w)")
    require(kuavo.command_frame in (1, 2), "env.kuavo.command_frame must be 1 (world) or 2 (local)")
    for key in ("ee_step_m", "max_hand_step_m", "max_joint_step_rad", "control_period_s", "stale_timeout_s",
                "settle_tolerance_m", "settle_timeout_s", "service_timeout_s", "lift_m", "drop_m",
                "reach_tolerance_m"):
        require(getattr(kuavo, key) > 0, f"env.kuavo.{key} must be > 0")
    require(kuavo.joint_limit_margin_rad >= 0, "env.kuavo.joint_limit_margin_rad must be >= 0")
    require(kuavo.ee_step_m * 3 ** 0.5 <= kuavo.max_hand_step_m + 1e-12,
            f"env.kuavo.ee_step_m ({kuavo.ee_step_m:g}) is too large for max_hand_step_m ({kuavo.max_hand_step_m:g}): a "
            f"diagonal action moves sqrt(3) * ee_step_m, which the speed limit would cut, so the policy's commands "
            f"would no longer be what it asked for; raise max_hand_step_m to at least {kuavo.ee_step_m * 3 ** 0.5:.4g}")
    require(sim.timing in ("lockstep", "realtime"), f"env.kuavo_sim.timing must be lockstep or realtime, got '{sim.timing}'")
    for key in ("publish_rate_hz", "idle_republish_s", "substeps", "joint_speed_limit_rad_s", "hand_speed_limit_m_s"):
        require(getattr(sim, key) > 0, f"env.kuavo_sim.{key} must be > 0")
    for key in ("box_mass_range", "box_friction_range"):
        values = getattr(sim, key)
        require(len(values) == 2 and 0 < values[0] <= values[1], f"env.kuavo_sim.{key} must be [low, high] with 0 < low <= high")
