"""The Kuavo bridge (env node) driving the simulated Kuavo (kuavo_sim node) over DDS with the real
robot's topics, types and units; the test process plays the actor (signed actions) and listens to
the robot's topics like a second observer on the domain."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

import kuavo_msgs.msg as msgs
from helpers.kuavo import CONFIG, DdsActor, start_robot_side, stop_robot_side
from helpers.pipeline import wait_for
from kuavo_rl import topics
from kuavo_rl.config import load_config
from kuavo_rl.kuavo.model import ARM_JOINT_LOWER, ARM_JOINT_UPPER
from kuavo_rl.kuavo.ros2_link import SENSOR_QOS
from kuavo_rl.kuavo.task import HandPair, Workspace
from kuavo_rl.protocol import ActionDecision

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

SLACK_M = 0.03


def policy_actor(context, run_dir, policy) -> DdsActor:
    """Answers every observation of the env node, a resend too (the env node resends when an answer was
    refused), with the next action of `policy(observation)`."""
    def answer(msg) -> ActionDecision:
        action = np.asarray(policy(np.asarray(msg.observation)), np.float32)
        return ActionDecision(msg.episode_id, msg.step_index, action, reset=msg.terminated or msg.truncated)
    return DdsActor(context, run_dir, answer, "mini_actor")


def logged(node, text: str) -> bool:
    return any(text in line for line in node.lines)


def test_bridge_drives_the_simulated_kuavo_safely_and_holds_on_a_lost_stream(tmp_path, rclpy_context):
    cfg = load_config(CONFIG).env.kuavo
    base = np.asarray(cfg.base_position)
    workspace = Workspace(cfg)
    rng = np.random.default_rng(0)
    corners = np.array([[1, 1, 1, 1, -1, 1], [-1, -1, -1, -1, 1, -1]], np.float32)
    step = [0]

    def adversary(_observation):
        step[0] += 1
        kind = step[0] % 3
        if kind == 0:
            return np.full(6, np.nan)  # refused by the bridge; the actor's next answer goes through
        return corners[(step[0] // 20) % 2] if kind == 1 else rng.uniform(-5, 5, 6)

    sim, env = start_robot_side(tmp_path)
    actor = policy_actor(rclpy_context, tmp_path, adversary)
    commands, hands, sensors = [], {"left": [], "right": []}, []
    actor.node.create_subscription(msgs.TwoArmHandPoseCmd, cfg.hand_pose_cmd_topic, commands.append, SENSOR_QOS)
    actor.node.create_subscription(msgs.SensorsData, cfg.sensors_topic, sensors.append, SENSOR_QOS)
    for side, topic in (("left", cfg.left_hand_pose_topic), ("right", cfg.right_hand_pose_topic)):
        actor.node.create_subscription(PoseStamped, topic, hands[side].append, SENSOR_QOS)
    try:
        actor.spin_until(lambda: len(actor.observations) >= 60, 120, "60 steps of the adversarial policy")
        assert logged(env, "contains NaN")  # NaN actions were refused, with the reason
        # Commands: the real robot's type, frame and units, always inside the workspace.
        assert commands and all(c.frame == cfg.command_frame == 2 for c in commands)
        for c in commands:
            targets = HandPair(np.asarray(c.hand_poses.left_pose.pos_xyz), np.asarray(c.hand_poses.right_pose.pos_xyz))
            assert workspace.contains(targets), targets
            assert abs(np.linalg.norm(c.hand_poses.left_pose.quat_xyzw) - 1.0) < 1e-6
        # The hands, as the robot reports them, never left the workspace (plus tracking slack).
        slack_low, slack_high = workspace.left[0] - SLACK_M, workspace.left[1] + SLACK_M
        for msg in hands["left"]:
            p = np.array([msg.pose.position.x, msg.pose.position.y, msg.pose.position.z]) - base
            assert np.all(p >= slack_low) and np.all(p <= slack_high), p
        # The joints stayed inside their limits and under the speed limit (2 rad/s, with tracking slack).
        q = np.array([m.joint_data.joint_q for m in sensors])[:, 12:26]
        v = np.array([m.joint_data.joint_v for m in sensors])[:, 12:26]
        assert np.all(q >= ARM_JOINT_LOWER - 0.02) and np.all(q <= ARM_JOINT_UPPER + 0.02)
        assert np.max(np.abs(v)) <= 3.0, np.max(np.abs(v))

        # The robot's state stream stops (the simulator is frozen): the bridge holds and says why.
        os.kill(sim.popen.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        count = len(actor.observations)
        actor.spin_until(lambda: logged(env, "holding: no fresh robot state"), 10, "the bridge to report the hold")
        assert time.monotonic() - stopped_at < cfg.stale_timeout_s + 2.0
        held_steps = {(m.episode_id, m.step_index) for m in actor.observations[count:]}
        assert len(held_steps) <= 1, held_steps  # no stepping while the robot is silent
        os.kill(sim.popen.pid, signal.SIGCONT)
        resumed = len(actor.observations)
        actor.spin_until(lambda: len({(m.episode_id, m.step_index) for m in actor.observations[resumed:]}) >= 10, 60,
                         "stepping to resume")
        assert logged(env, "resumed after holding")
    finally:
        actor.close()
        os.kill(sim.popen.pid, signal.SIGCONT)
        stop_robot_side(sim, env)
    # The arms were switched to external control at start and back to keep-pose at stop, through the service.
    modes = [line for line in sim.lines if "arm control mode" in line and "commands" not in line]
    assert any("arm control mode 2" in line for line in modes) and "arm control mode 0" in modes[-1], modes


def test_a_robot_episode_starts_when_the_operator_confirms(tmp_path, rclpy_context):
    from kuavo_msgs.srv import ConfirmReset
    sim, env = start_robot_side(tmp_path, ["env.kuavo.confirm_reset=true"])
    actor = policy_actor(rclpy_context, tmp_path, lambda _obs: np.zeros(6, np.float32))
    client = actor.node.create_client(ConfirmReset, topics.CONFIRM_RESET)
    try:
        actor.spin_until(lambda: logged(env, "waiting for the operator"), 60, "the bridge to wait for the operator")
        assert not actor.observations  # no episode before the confirmation
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(ConfirmReset.Request(confirmed_by="test"))
        actor.spin_until(lambda: future.done(), 20, "the confirmation's answer")
        assert future.result().accepted
        actor.spin_until(lambda: len(actor.observations) >= 3, 30, "the episode to start")
    finally:
        actor.close()
        stop_robot_side(sim, env)


def test_joint_mode_sends_fourteen_positions_in_degrees(tmp_path, rclpy_context):
    overrides = ["env.kuavo.action_mode=joint", "env.action_dim=14"]
    cfg = load_config(CONFIG, overrides).env.kuavo
    action = np.linspace(-0.5, 0.5, 14).astype(np.float32)
    sim, env = start_robot_side(tmp_path, overrides)
    actor = policy_actor(rclpy_context, tmp_path, lambda _obs: action)
    commands, sensors = [], []
    actor.node.create_subscription(JointState, cfg.joint_cmd_topic, commands.append, SENSOR_QOS)
    actor.node.create_subscription(msgs.SensorsData, cfg.sensors_topic, sensors.append, SENSOR_QOS)
    stranger = actor.node.create_publisher(JointState, cfg.joint_cmd_topic, SENSOR_QOS)
    try:
        actor.spin_until(lambda: len(actor.observations) >= 40, 120, "40 steps in joint mode")
        bridge_commands, last_sensors = list(commands), sensors[-1]
        bad = JointState(name=[f"arm_joint_{i}" for i in range(13)], position=[0.0] * 13)
        wait_for(lambda: stranger.publish(bad) or actor.executor.spin_once(timeout_sec=0.05)  # until discovered
                 or logged(sim, "needs 14 joint names"), 20,
                 "the simulated robot to refuse a 13-joint command")
    finally:
        actor.close()
        stop_robot_side(sim, env)
    last = bridge_commands[-1]
    assert all(len(c.name) == 14 and len(c.position) == 14 for c in bridge_commands)
    low, high = ARM_JOINT_LOWER + cfg.joint_limit_margin_rad, ARM_JOINT_UPPER - cfg.joint_limit_margin_rad
    wanted = low + (action + 1.0) * 0.5 * (high - low)
    np.testing.assert_allclose(last.position, np.degrees(wanted), atol=1e-6)  # degrees on the wire
    measured = np.asarray(last_sensors.joint_data.joint_q)[12:26]  # radians on the sensor topic
    assert len(last_sensors.joint_data.joint_q) == 28
    np.testing.assert_allclose(measured, wanted, atol=np.radians(3))


def test_realtime_simulator_paces_the_bridge_at_the_control_rate(tmp_path, rclpy_context):
    overrides = ["env.kuavo_sim.timing=realtime", "env.kuavo_sim.publish_rate_hz=100",
                 "env.kuavo.hand_pose_source=fk"]  # hand poses from the joints: the other observation source
    cfg = load_config(CONFIG, overrides).env.kuavo
    sim, env = start_robot_side(tmp_path, overrides)
    actor = policy_actor(rclpy_context, tmp_path, lambda _obs: np.zeros(6, np.float32))
    sensors = []
    actor.node.create_subscription(msgs.SensorsData, cfg.sensors_topic, lambda m: sensors.append(time.monotonic()),
                                   SENSOR_QOS)
    try:
        actor.spin_until(lambda: len(actor.observations) >= 5, 60, "the first steps")
        first, start = len(actor.observations), time.monotonic()
        sensors.clear()
        actor.spin_until(lambda: time.monotonic() - start > 3.0, 10, "3 s of realtime stepping")
    finally:
        actor.close()
        stop_robot_side(sim, env)
    steps_per_s = (len(actor.observations) - first) / 3.0
    sensor_hz = len(sensors) / 3.0
    assert 7.0 <= steps_per_s <= 11.0, steps_per_s  # 10 Hz: one control period of robot time per step
    assert 60.0 <= sensor_hz <= 110.0, sensor_hz
