"""The node as a separate process over real DDS. Needs the built workspace (kuavo_msgs, kuavo_rl):
    source /work/main/scripts/env.sh && python -m pytest test/vr/test_vr_node_ros.py
"""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy  # noqa: E402  (the workspace is built by ./kuavo test; a missing build must fail, not skip)

from helpers.vr_frames import frame, hand  # noqa: E402
from kuavo_msgs.msg import Intervention  # noqa: E402
from kuavo_rl import qos, topics  # noqa: E402
from kuavo_rl.supervisor import write_params_file  # noqa: E402
from kuavo_vr_teleop.sources import Recorder  # noqa: E402

pytestmark = pytest.mark.slow  # the VR node as a separate ROS process

PKG = Path(__file__).resolve().parents[2] / "src" / "kuavo_vr_teleop"


def start_node(tmp_path, domain, *overrides):
    """The node with the experiment settings as `section.key=value` overrides, passed the way the
    training supervisor passes them (a ROS parameters file with config_file and overrides)."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PKG), env.get("PYTHONPATH", "")) if p)
    env.pop("XR_RUNTIME_JSON", None)
    params = write_params_file(tmp_path / "vr_params.yaml", None, list(overrides), tmp_path / "run")
    log = open(tmp_path / "node.log", "w")
    args = [sys.executable, "-m", "kuavo_vr_teleop.node", "--ros-args", "--params-file", str(params)]
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT), tmp_path / "node.log"


def collect(domain, seconds, until=None):
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("vr_teleop_test_listener", context=ctx)
    got = []
    node.create_subscription(Intervention, topics.INTERVENTION, got.append, qos.INTERVENTION)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not (until and until(got)):
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return got


def stop(proc):
    still_running = proc.poll() is None
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    return still_running


def test_no_runtime_publishes_inactive_and_keeps_running(tmp_path):
    domain = random.randint(1, 200)
    # pick_lift's own mapping (vr.mapping unset) is ee_delta: 4 values.
    proc, log = start_node(tmp_path, domain, "vr.source=openxr", "vr.retry_period_s=1.0",
                           "env.name=pick_lift", "env.action_dim=4")
    try:
        got = collect(domain, 20.0, until=lambda g: len(g) >= 50)
        time.sleep(2.5)  # a couple of retries happen meanwhile
        assert stop(proc), f"node exited early:\n{log.read_text()}"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(got) >= 50
    assert all(not m.active and not m.estop and m.source == "openxr" for m in got)
    assert all(len(m.action) == 4 for m in got)
    text = log.read_text()
    assert text.count("No OpenXR runtime was found") == 1, text  # explained once, despite retries
    assert "XR_RUNTIME_JSON" in text


def test_replay_publishes_active_mapped_actions(tmp_path):
    # 2 s at 50 Hz: clutch held, right controller moving forward (-z in OpenXR) by up to 10 cm.
    rec = tmp_path / "forward.jsonl"
    with Recorder(rec, "scripted") as r:
        for i in range(100):
            r.write(frame(0.02 * i, hand((0.0, 1.0, -0.001 * i), squeeze=1.0)))
    domain = random.randint(1, 200)
    # An explicit mapping on the toy env, sized to match it.
    proc, log = start_node(tmp_path, domain, "vr.source=replay", f"vr.replay_file={rec}", "vr.replay_loop=true",
                           "vr.mapping=ee_delta", "env.action_dim=4")
    try:
        got = collect(domain, 20.0, until=lambda g: sum(m.active and m.action[0] > 0.5 for m in g) >= 5)
    finally:
        stop(proc)
    active = [m for m in got if m.active]
    assert active, f"no active messages; log:\n{log.read_text()}"
    assert all(m.source == "replay" and len(m.action) == 4 for m in active)
    assert max(m.action[0] for m in active) > 0.5  # forward motion -> +x end-effector command
    assert all(abs(m.action[1]) < 1e-5 and abs(m.action[2]) < 1e-5 for m in active)


@pytest.mark.parametrize("overrides, expected", [
    (("vr.mapping=joystick",), ["vr.mapping", "joystick", "toy, ee_delta, kuavo_ee_delta, kuavo_arms"]),
    (("vr.mapping=kuavo_arms", "env.name=pick_lift", "env.action_dim=4"),
     ["vr.mapping", "kuavo_arms", "16-dim", "takes 4", "env.action_dim"]),
    (("vr.source=replay",), ["vr.replay_file"]),
    (("vr.deadman=right.grip",), ["vr.deadman", "right.grip"]),
], ids=["unknown_mapping", "mapping_size_mismatch", "replay_without_file", "unknown_deadman_input"])
def test_configuration_error_exits_2_naming_the_key(tmp_path, overrides, expected):
    proc, log = start_node(tmp_path, random.randint(1, 200), *overrides)
    try:
        code = proc.wait(timeout=60)
    finally:
        stop(proc)
    text = log.read_text()
    assert code == 2, text
    assert "configuration error" in text and all(word in text for word in expected), text
    assert "Traceback" not in text, text
