"""The operator's episode labels over DDS: the Y and X buttons of a replayed controller recording,
through the VR node, the actor and the Kuavo bridge, end episodes of the simulated Kuavo with the
success or failure term set; and `kuavo-rl label` (the keyboard fallback) publishes signed labels."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import rclpy

import kuavo_msgs.msg as msgs
from helpers.pipeline import REPO
from kuavo_rl import qos, topics
from kuavo_rl.auth import Verifier, load_or_create_key
from kuavo_rl.kuavo.task import REWARD_TERM_NAMES
from kuavo_rl.run_log import read_rows
from kuavo_vr_teleop.controller import ControllerFrame, HandState
from kuavo_vr_teleop.sources import Recorder

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

SUCCESS, FAILURE = REWARD_TERM_NAMES.index("success"), REWARD_TERM_NAMES.index("failure")


def record_labels(path, cycle_s: float = 1.5, rate_hz: float = 50.0) -> None:
    """One cycle (looped by the replay): Y pressed for 0.1 s at 0.5 s (success), X for 0.1 s at 1.0 s
    (failure); the clutch is never held, so the policy acts."""
    with Recorder(path, "scripted") as recorder:
        for i in range(int(cycle_s * rate_hz)):
            t = i / rate_hz
            y, x = 0.5 <= t < 0.6, 1.0 <= t < 1.1
            left = HandState(position=(-0.2, 1.0, 0.0), pose_valid=True, primary=x, secondary=y)
            recorder.write(ControllerFrame(t, left, HandState(position=(0.2, 1.0, 0.0), pose_valid=True)))


def test_replayed_y_and_x_end_kuavo_episodes_as_success_and_failure(tmp_path):
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.launch_plan import vr_overrides
    from kuavo_rl.supervisor import run_pipeline
    recording = tmp_path / "labels.jsonl"
    record_labels(recording)
    overrides = ["run.total_env_steps=600", "algo.learning_starts=100000", "actor.eval_every_episodes=0",
                 "actor.final_eval_episodes=0",
                 *vr_overrides("replay", str(recording))]
    run_pipeline(tmp_path / "run", str(REPO / "config" / "kuavo_sim_box_lift.yaml"), overrides, timeout_s=600,
                 quiet=True, vr=True, simulator=True)
    online = load_latest(tmp_path / "run" / "checkpoints")["buffers"]["online"]
    terms, terminated = online["reward_terms"], online["terminated"]
    ended = terms[terminated]
    assert (ended[:, SUCCESS] == 1).sum() >= 2 and (ended[:, FAILURE] == 1).sum() >= 2, ended[:, 3:]
    assert not terms[~terminated][:, 3:].any()  # the terms are set only where an episode ended
    episodes = read_rows(tmp_path / "run" / "episodes.csv")
    assert sum(e["length"] < 200 for e in episodes) >= 4  # labelled episodes end early
    env_log = (tmp_path / "run" / "logs" / "env.log").read_text()
    assert "labelled success by the operator" in env_log and "labelled failure by the operator" in env_log


def test_the_keyboard_labeller_publishes_signed_labels(tmp_path, rclpy_context):
    key = load_or_create_key(tmp_path / "run.key")
    received = []
    node = rclpy.create_node("label_listener", context=rclpy_context)
    node.create_subscription(msgs.EpisodeLabel, topics.EPISODE_LABEL, received.append, qos.EPISODE_LABEL)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    labeller = subprocess.Popen([sys.executable, "-m", "kuavo_rl.cli", "label", "--run-dir", str(tmp_path)],
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    labeller.stdin.write("s\nmaybe\nf\nq\n")
    labeller.stdin.close()
    deadline = time.monotonic() + 60
    while labeller.poll() is None and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    for _ in range(20):
        executor.spin_once(timeout_sec=0.05)
    node.destroy_node()
    stderr = labeller.stderr.read()
    assert labeller.returncode == 0, stderr
    assert "'maybe' is not a label" in stderr
    verifier = Verifier(key)
    for msg in received:
        verifier.verify(msg)  # raises unless signed with the run key
    by_id = {m.label_id: m.label for m in received}
    assert sorted(by_id.values()) == [1, 2] and {m.source for m in received} == {"keyboard"}
    assert len(received) >= 6  # each label repeated (a lost message does not lose it)
    missing = subprocess.run([sys.executable, "-m", "kuavo_rl.cli", "label", "--run-dir", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no run key" in missing.stderr
