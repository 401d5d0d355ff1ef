"""The env node over DDS, driven by a minimal actor in the test process."""
from __future__ import annotations

import time

import numpy as np
import pytest

import kuavo_msgs.msg as msgs
from helpers.pipeline import probe_node, start_toy_node, wait_for
from helpers.signing import run_signer
from kuavo_rl import qos, topics
from kuavo_rl.codec import action_to_msg
from kuavo_rl.protocol import ActionDecision

pytestmark = pytest.mark.slow  # separate ROS processes over DDS


def loaded_libraries(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split()[-1].rsplit("/", 1)[-1] for line in maps if "/" in line}


def drive_env_node(tmp_path, context, overrides, seconds: float, answer=True, libraries=None):
    """Answer every observation with a zero action for `seconds`; return (receive time, msg) pairs.
    `libraries` (a set) gets the shared libraries the env node has loaded once it serves."""
    from kuavo_rl.supervisor import stop_node
    env = start_toy_node("env", tmp_path, overrides)
    node, executor = probe_node(context, "mini_actor")
    received = []
    publisher = node.create_publisher(msgs.ActionCommand, topics.ACTION, qos.STEP)
    signer = run_signer(tmp_path)

    def on_observation(msg):
        received.append((time.monotonic(), msg))
        if answer:
            reset = msg.truncated or msg.terminated
            decision = ActionDecision(msg.episode_id, msg.step_index, np.zeros(2, np.float32), reset=reset)
            publisher.publish(signer.sign(action_to_msg(msgs.ActionCommand(), decision)))

    node.create_subscription(msgs.EnvObservation, topics.OBSERVATION, on_observation, qos.STEP)
    try:
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or received, 60, "the first observation", poll_s=0)
        if libraries is not None:
            libraries |= loaded_libraries(env.popen.pid)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
    finally:
        node.destroy_node()
        stop_node(env)
    return received


def test_realtime_env_steps_on_its_own_clock(tmp_path, rclpy_context):
    received = drive_env_node(tmp_path, rclpy_context, ["env.action_dim=2", "env.timing=realtime",
                                                       "env.rate_hz=20", "env.episode_steps=30"], seconds=4.0)
    steps = [t for t, m in received if m.step_index > 0]
    rate = (len(steps) - 1) / (steps[-1] - steps[0])
    assert 15.0 < rate < 22.0, rate
    assert any(m.step_index == 0 and m.episode_id == 1 for _, m in received)  # reset after truncation
    for (_, a), (_, b) in zip(received, received[1:]):
        # the next step, the next episode's first, or the same observation again: the env republishes its
        # current observation when a subscriber matches, which can land right after the first publication
        assert (b.episode_id, b.step_index) in {(a.episode_id, a.step_index + 1), (a.episode_id + 1, 0),
                                                (a.episode_id, a.step_index)}


def test_env_does_not_step_without_an_answer_and_resends(tmp_path, rclpy_context):
    libraries = set()
    received = drive_env_node(tmp_path, rclpy_context, ["env.action_dim=2"], seconds=2.5, answer=False,
                              libraries=libraries)
    assert len(received) >= 2  # the unanswered observation is resent (1 s period)
    # The env node serves without torch (about 1 GB and seconds of start-up less than the other nodes).
    assert any(name.startswith("librcl") for name in libraries), sorted(libraries)[:20]
    assert not any(name.startswith(("libtorch", "libc10")) for name in libraries)
    assert {(m.episode_id, m.step_index) for _, m in received} == {(0, 0)}


def test_an_actor_that_subscribes_late_gets_the_observation_at_once(tmp_path, rclpy_context):
    """The env republishes its current observation when a subscriber matches, not only when idle for
    env.republish_period_s (set here far longer than the test waits)."""
    from kuavo_rl.supervisor import stop_node
    env = start_toy_node("env", tmp_path, ["env.action_dim=2", "env.republish_period_s=60"])
    node, executor = probe_node(context=rclpy_context, name="late_actor")
    try:
        first, late = [], []
        node.create_subscription(msgs.EnvObservation, topics.OBSERVATION, first.append, qos.STEP)
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or first, 60, "the first observation", poll_s=0)
        time.sleep(1.0)
        subscribed_at = time.monotonic()
        node.create_subscription(msgs.EnvObservation, topics.OBSERVATION, late.append, qos.STEP)
        wait_for(lambda: executor.spin_once(timeout_sec=0.05) or late, 10, "the observation for the late subscriber",
                 poll_s=0)
        assert time.monotonic() - subscribed_at < 5.0
        assert (late[0].episode_id, late[0].step_index) == (first[0].episode_id, first[0].step_index)
    finally:
        node.destroy_node()
        stop_node(env)
