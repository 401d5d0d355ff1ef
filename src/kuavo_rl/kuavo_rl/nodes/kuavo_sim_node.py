"""The simulated Kuavo (MuJoCo) speaking the real robot's topics and services, with the same types
and units: /sensors_data_raw (28 joints, rad), /fk/eef_pose_left|right and /box_real_pose
(PoseStamped, world), /kuavo_arm_traj (degrees) and the TwoArmHandPoseCmd topic in, the arm
control-mode service and a scene-reset service. Names come from env.kuavo, timing from env.kuavo_sim:

lockstep: every command advances the simulation one control period, then the state is published
(fast, for training and CI); the state is republished unchanged while no command comes.
realtime: the simulation follows the wall clock and publishes at publish_rate_hz.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from kuavo_msgs.msg import SensorsData, TwoArmHandPoseCmd
from kuavo_msgs.srv import ChangeArmCtrlMode, ResetScene
from kuavo_rl.kuavo.ros2_link import COMMAND_QOS, SENSOR_QOS
from kuavo_rl.kuavo.sim_server import SimServer
from kuavo_rl.nodes.common import load_node_config, run_node


def time_msg(msg, seconds: float):
    msg.sec, msg.nanosec = divmod(int(round(seconds * 1e9)), 1_000_000_000)
    return msg


def pose_msg(position, quat_xyzw, seconds: float) -> PoseStamped:
    msg = PoseStamped()
    time_msg(msg.header.stamp, seconds)
    msg.header.frame_id = "world"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quat_xyzw)
    return msg


class KuavoSimNode(Node):
    def __init__(self):
        super().__init__("kuavo_sim")
        cfg = load_node_config(self)
        kuavo, sim = cfg.env.kuavo, cfg.env.kuavo_sim
        self.server = SimServer(kuavo, sim, seed=cfg.run.seed)
        self.lockstep = sim.timing == "lockstep"
        self.sensors_pub = self.create_publisher(SensorsData, kuavo.sensors_topic, SENSOR_QOS)
        self.pose_pubs = {name: self.create_publisher(PoseStamped, topic, SENSOR_QOS) for name, topic in (
            ("left", kuavo.left_hand_pose_topic), ("right", kuavo.right_hand_pose_topic), ("box", kuavo.box_pose_topic))}
        self.create_subscription(JointState, kuavo.joint_cmd_topic, self.on_joint_command, COMMAND_QOS)
        self.create_subscription(TwoArmHandPoseCmd, kuavo.hand_pose_cmd_topic, self.on_hand_pose_command, COMMAND_QOS)
        self.create_service(ChangeArmCtrlMode, kuavo.mode_service, self.on_change_mode)
        self.create_service(ResetScene, sim.reset_service, self.on_reset_scene)
        if self.lockstep:
            self.create_timer(sim.idle_republish_s, self.publish_state)
        else:
            self.create_timer(1.0 / sim.publish_rate_hz, self.realtime_tick)
            self.realtime_period_s = 1.0 / sim.publish_rate_hz
        self.publish_state()
        self.get_logger().info(f"simulated Kuavo ({sim.timing}), arm control mode {self.server.mode}; "
                               f"commands on {kuavo.joint_cmd_topic} and {kuavo.hand_pose_cmd_topic}")

    # ---- commands ------------------------------------------------------------------------------
    def on_joint_command(self, msg: JointState) -> None:
        self._command(self.server.joint_command, list(msg.name), list(msg.position))

    def on_hand_pose_command(self, msg: TwoArmHandPoseCmd) -> None:
        left, right = msg.hand_poses.left_pose, msg.hand_poses.right_pose
        self._command(self.server.hand_pose_command, left.pos_xyz, left.quat_xyzw, right.pos_xyz, right.quat_xyzw,
                      msg.frame)

    def _command(self, apply, *args) -> None:
        """Apply a command (a refused one is logged, as the real controller prints it); lockstep: a
        command is one control period of simulated time."""
        try:
            apply(*args)
            self.server.count(True)
        except Exception as error:  # noqa: BLE001 - the robot never dies on a command (CommandRefused and worse)
            self.server.count(False)
            self.get_logger().error(f"command refused: {error}")
        if self.lockstep:
            self.server.advance()
            self.publish_state()

    def on_change_mode(self, request, response):
        response.result, response.mode, response.message = self.server.change_mode(request.control_mode)
        self.get_logger().info(response.message)
        return response

    def on_reset_scene(self, request, response):
        response.success, response.message = self.server.reset_scene(request.seed)
        self.publish_state()
        return response

    # ---- state ---------------------------------------------------------------------------------
    def realtime_tick(self) -> None:
        self.server.advance(self.realtime_period_s)
        self.publish_state()

    def publish_state(self) -> None:
        state, joint_v = self.server.reading()
        msg = SensorsData()
        time_msg(msg.header.stamp, state.stamp)
        time_msg(msg.sensor_time, state.stamp)
        msg.joint_data.joint_q = state.joint_q.astype(np.float64)
        msg.joint_data.joint_v = np.asarray(joint_v, np.float64)
        msg.joint_data.joint_vd = np.zeros(28)
        msg.joint_data.joint_torque = np.zeros(28)
        self.sensors_pub.publish(msg)
        hands = self.server.sim.hand_poses()
        self.pose_pubs["left"].publish(pose_msg(state.left_hand, hands.left_quat_xyzw, state.stamp))
        self.pose_pubs["right"].publish(pose_msg(state.right_hand, hands.right_quat_xyzw, state.stamp))
        self.pose_pubs["box"].publish(pose_msg(state.box_position, state.box_quat_xyzw, state.stamp))

    def close(self) -> None:
        self.get_logger().info(f"simulated Kuavo: {self.server.commands['accepted']} commands followed, "
                               f"{self.server.commands['refused']} refused")


def main(args=None):
    raise SystemExit(run_node(KuavoSimNode, args))


if __name__ == "__main__":
    main()
