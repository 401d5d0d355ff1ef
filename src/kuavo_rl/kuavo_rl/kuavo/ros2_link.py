"""`RobotLink` over ROS 2: Leju's topics and services, as the kuavo_sim node serves them and as a
real Kuavo does through ros1_bridge (names in env.kuavo). Runs its own node on its own executor
thread, so the env node can wait for the robot's next state inside its action callback.

Leju's topics are the robot's own interface: they are not signed (the robot does not sign), so
anyone on the DDS domain who can reach the robot can command it directly. Keep the robot's ROS
domain on a closed network (README, "Two machines").
"""
from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from kuavo_msgs.msg import SensorsData, TwoArmHandPoseCmd
from kuavo_msgs.srv import ChangeArmCtrlMode, ResetScene
from kuavo_rl.kuavo.link import ARM_JOINT_COMMAND_NAMES, LinkError
from kuavo_rl.kuavo.settings import KuavoConfig
from kuavo_rl.kuavo.task import HandPair, RobotState

# Robot state: the newest reading only; commands: reliable, the newest wins.
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def fill_hand_pose_cmd(msg: TwoArmHandPoseCmd, hands: HandPair, quats: HandPair, frame: int, now_ms: int):
    for pose, position, quat in ((msg.hand_poses.left_pose, hands.left, quats.left),
                                 (msg.hand_poses.right_pose, hands.right, quats.right)):
        pose.pos_xyz = np.asarray(position, np.float64)
        pose.quat_xyzw = np.asarray(quat, np.float64)
    msg.frame = int(frame)
    msg.timestamp_ms = int(now_ms)
    return msg


class _Latest:
    """The newest message of one source: its robot-clock stamp and when it arrived here."""

    def __init__(self):
        self.value = None
        self.stamp = -np.inf
        self.arrived = -np.inf


class Ros2Link:
    def __init__(self, cfg: KuavoConfig, log=lambda message: None):
        self.cfg, self.log = cfg, log
        self.node = rclpy.create_node("kuavo_robot_link")
        self.changed = threading.Condition()
        self.sources: dict[str, _Latest] = {"joints": _Latest(), "box": _Latest()}
        self.node.create_subscription(SensorsData, cfg.sensors_topic, self._on_sensors, SENSOR_QOS)
        self.node.create_subscription(PoseStamped, cfg.box_pose_topic, self._pose_handler("box"), SENSOR_QOS)
        self.kinematics = None
        if cfg.hand_pose_source == "topics":
            for name, topic in (("left", cfg.left_hand_pose_topic), ("right", cfg.right_hand_pose_topic)):
                self.sources[name] = _Latest()
                self.node.create_subscription(PoseStamped, topic, self._pose_handler(name), SENSOR_QOS)
        else:
            from kuavo_rl.kuavo.kinematics import ArmKinematics
            self.kinematics = ArmKinematics()
        self.hand_pub = self.node.create_publisher(TwoArmHandPoseCmd, cfg.hand_pose_cmd_topic, COMMAND_QOS)
        self.joint_pub = self.node.create_publisher(JointState, cfg.joint_cmd_topic, COMMAND_QOS)
        self.mode_client = self.node.create_client(ChangeArmCtrlMode, cfg.mode_service)
        self.reset_client = (self.node.create_client(ResetScene, cfg.scene_reset_service)
                             if cfg.scene_reset_service else None)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._spinning = True
        self.thread = threading.Thread(target=self._spin, name="kuavo_robot_link", daemon=True)
        self.thread.start()

    # ---- receiving (executor thread) -----------------------------------------------------------
    def _spin(self) -> None:
        while self._spinning and rclpy.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception as error:  # noqa: BLE001 - a malformed message must not stop the link
                self.log(f"robot link: {error}")

    def _store(self, name: str, value, stamp: float) -> None:
        with self.changed:
            source = self.sources[name]
            source.value, source.stamp, source.arrived = value, stamp, time.monotonic()
            self.changed.notify_all()

    def _on_sensors(self, msg: SensorsData) -> None:
        q = np.asarray(msg.joint_data.joint_q, np.float64)
        if q.shape != (28,) or not np.all(np.isfinite(q)):
            self.log(f"refused {self.cfg.sensors_topic}: joint_q must be 28 finite values, got {q.shape[0]}")
            return
        self._store("joints", q, stamp_seconds(msg.header.stamp))

    def _pose_handler(self, name: str):
        def handler(msg: PoseStamped) -> None:
            p, o = msg.pose.position, msg.pose.orientation
            value = (np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))
            if not all(np.all(np.isfinite(v)) for v in value):
                self.log(f"refused {name} pose: not finite")
                return
            self._store(name, value, stamp_seconds(msg.header.stamp))
        return handler

    # ---- RobotLink -----------------------------------------------------------------------------
    def _complete(self) -> RobotState | None:
        """The state made of every source's newest message, if none is missing or stale."""
        now = time.monotonic()
        if any(now - s.arrived > self.cfg.stale_timeout_s for s in self.sources.values()):
            return None
        joints = self.sources["joints"].value
        if self.kinematics is not None:
            poses = self.kinematics.fk(joints[12:26])
            left, right = np.asarray(poses.left_pos, float), np.asarray(poses.right_pos, float)
        else:
            left, right = self.sources["left"].value[0], self.sources["right"].value[0]
        box_position, box_quat = self.sources["box"].value
        return RobotState(min(s.stamp for s in self.sources.values()), joints.copy(), left.copy(), right.copy(),
                          box_position.copy(), box_quat.copy())

    def latest(self) -> RobotState | None:
        with self.changed:
            return self._complete()

    def newest_stamp(self) -> float:
        with self.changed:
            return min(s.stamp for s in self.sources.values())

    def wait_for_state(self, stamp: float, timeout_s: float) -> RobotState | None:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                state = self._complete()
                if state is not None and state.stamp >= stamp - 1e-6:
                    return state
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.changed.wait(min(remaining, 0.05))

    def send_hand_targets(self, hands: HandPair, quats: HandPair, frame: int) -> None:
        msg = fill_hand_pose_cmd(TwoArmHandPoseCmd(), hands, quats, frame, time.time() * 1000)
        msg.hand_poses.header.stamp = self.node.get_clock().now().to_msg()
        self.hand_pub.publish(msg)

    def send_joint_targets(self, arm_q_rad: np.ndarray) -> None:
        msg = JointState()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.name = list(ARM_JOINT_COMMAND_NAMES)
        msg.position = [float(v) for v in np.degrees(arm_q_rad)]  # Leju's /kuavo_arm_traj is in degrees
        self.joint_pub.publish(msg)

    def _call(self, client, request, what: str):
        if not client.wait_for_service(timeout_sec=self.cfg.service_timeout_s):
            raise LinkError(f"{what}: service {client.srv_name} is not available")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.cfg.service_timeout_s):
            client.remove_pending_request(future)
            raise LinkError(f"{what}: no answer from {client.srv_name} within {self.cfg.service_timeout_s:g} s")
        return future.result()

    def set_control_mode(self, mode: int) -> None:
        answer = self._call(self.mode_client, ChangeArmCtrlMode.Request(control_mode=int(mode)), "control mode")
        if not answer.result or answer.mode != mode:
            raise LinkError(f"control mode {mode} refused by {self.cfg.mode_service}: "
                            f"result={answer.result}, mode={answer.mode}, {answer.message!r}")

    def reset_scene(self, seed: int | None) -> None:
        answer = self._call(self.reset_client, ResetScene.Request(seed=-1 if seed is None else int(seed)), "scene reset")
        if not answer.success:
            raise LinkError(f"scene reset refused by {self.cfg.scene_reset_service}: {answer.message!r}")

    def close(self) -> None:
        self._spinning = False
        self.thread.join(timeout=2.0)
        self.executor.remove_node(self.node)
        self.node.destroy_node()
