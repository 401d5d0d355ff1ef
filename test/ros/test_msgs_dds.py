"""kuavo_msgs over real DDS between two processes: every message arrives field-by-field identical."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

import kuavo_msgs.msg as msgs
from helpers.big_batch import make_big_batch
from helpers.msg_fixtures import KUAVO_MESSAGES, STACK_MESSAGES, make
from kuavo_rl.codec import batch_from_msg

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

TESTS = Path(__file__).resolve().parents[1]  # helpers/ lives there
QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)


def receive_from_other_process(context, names: list[str], topics: dict[str, type], timeout_s: float = 30.0):
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    publisher = subprocess.Popen([sys.executable, "-m", "helpers.ros_publish", *names], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = rclpy.create_node("fixture_receiver", context=context)
    received = {}
    for topic, msg_type in topics.items():
        node.create_subscription(msg_type, topic, lambda m, t=topic: received.setdefault(t, m), QOS)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout_s
    try:
        while len(received) < len(topics) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            assert publisher.poll() is None, publisher.stdout.read()
    finally:
        publisher.kill()
        publisher.wait()
        node.destroy_node()
    missing = sorted(set(topics) - set(received))
    assert not missing, f"nothing received on {missing}"
    return received


@pytest.mark.parametrize("names", [STACK_MESSAGES, KUAVO_MESSAGES], ids=["stack", "kuavo_ports"])
def test_every_message_crosses_dds_identical(rclpy_context, names):
    topics = {f"/test/{name}": getattr(msgs, name) for name in names}
    received = receive_from_other_process(rclpy_context, list(names), topics)
    for name in names:
        expected, got = make(name), received[f"/test/{name}"]
        for field in expected.get_fields_and_field_types():
            assert _same(getattr(got, field), getattr(expected, field)), f"{name}.{field} differs"
        assert got == expected


def test_fixture_messages_populate_every_field():
    # Guards the test above: a field left at its default would compare equal trivially.
    for name in STACK_MESSAGES + KUAVO_MESSAGES:
        msg, default = make(name), getattr(msgs, name)()
        for field in msg.get_fields_and_field_types():
            assert not _same(getattr(msg, field), getattr(default, field)), f"{name}.{field} not populated"


def _same(a, b) -> bool:
    """Field equality; fixed-size array fields are numpy arrays."""
    return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) else a == b


def test_ten_thousand_transition_batch_crosses_intact(rclpy_context):
    received = receive_from_other_process(rclpy_context, ["big_batch"], {"/test/big_batch": msgs.TransitionBatch},
                                          timeout_s=60.0)
    got, expected = batch_from_msg(received["/test/big_batch"]), make_big_batch()
    assert got.count == 10_000
    for f in fields(expected):
        a, b = getattr(got, f.name), getattr(expected, f.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), f.name
        else:
            assert a == b, f.name
