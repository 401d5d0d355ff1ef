"""Human takeover end to end on the simulated pick-lift task: a recorded controller stream is
replayed by the VR teleop node into a running pipeline; the learner's offline buffer holds exactly
the mapped human actions, training batches mix them in at the configured ratio, and the learner
writes them as a LeRobotDataset of takeover segments when it stops."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import rclpy

import kuavo_msgs.msg as msgs
from helpers.pipeline import REPO
from kuavo_rl import qos, topics
from kuavo_rl.run_log import read_rows
from kuavo_vr_teleop.controller import ControllerFrame, HandState
from kuavo_vr_teleop.sources import Recorder

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

OFFLINE_RATIO = 0.25


def record_takeovers(path, seconds: float = 8.0, rate_hz: float = 50.0) -> None:
    """Cycles of 2 s: clutch (right squeeze) held for 1 s while the hand moves forward and up, then released."""
    with Recorder(path, "scripted") as recorder:
        for i in range(int(seconds * rate_hz)):
            t = i / rate_hz
            phase = t % 2.0
            held = phase < 1.0
            right = HandState(position=(0.0, 1.0 + 0.02 * phase, -0.04 * phase), pose_valid=True,
                              squeeze=1.0 if held else 0.0)
            left = HandState(position=(-0.2, 1.0, 0.0), pose_valid=True)
            recorder.write(ControllerFrame(t, left, right))


def test_replayed_takeovers_reach_the_offline_buffer_and_the_batches(tmp_path, rclpy_context):
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.launch_plan import vr_overrides
    from kuavo_rl.supervisor import run_pipeline
    recording = tmp_path / "takeovers.jsonl"
    record_takeovers(recording)
    overrides = ["run.total_env_steps=700", "algo.learning_starts=200", f"algo.offline_ratio={OFFLINE_RATIO}",
                 "algo.batch_size=64", "algo.hidden_dims=[64, 64]", "actor.eval_every_episodes=0",
                 "actor.final_eval_episodes=0", "actor.intervention_timeout_s=0.2",
                 *vr_overrides("replay", str(recording))]

    published: list[np.ndarray] = []
    node = rclpy.create_node("intervention_listener", context=rclpy_context)
    node.create_subscription(msgs.Intervention, topics.INTERVENTION,
                             lambda m: m.active and published.append(np.array(m.action, np.float32)), qos.INTERVENTION)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    outcome = {}
    pipeline = threading.Thread(target=lambda: outcome.update(codes=run_pipeline(
        tmp_path / "run", str(REPO / "config" / "sim_pick_lift.yaml"), overrides, timeout_s=600, quiet=True, vr=True)))
    pipeline.start()
    while pipeline.is_alive():
        executor.spin_once(timeout_sec=0.05)
    node.destroy_node()
    assert "codes" in outcome, "the pipeline failed; see the logs under the run dir"

    state = load_latest(tmp_path / "run" / "checkpoints")
    offline = state["buffers"]["offline"]
    online = state["buffers"]["online"]
    assert state["counters"]["intervention_transitions"] == offline["size"] > 20
    # Every offline transition carries an action the VR node published (the mapped human action).
    human = np.unique(np.round(np.stack(published), 5), axis=0)
    for action in offline["actions"]:
        assert np.min(np.abs(human - action).max(axis=1)) < 1e-4, action
    assert np.abs(offline["actions"][:, 0]).max() > 0.1  # the forward motion reached the env
    # The same transitions are in the online buffer, flagged.
    flagged = set(online["sequences"][online["intervention"]].tolist())
    assert flagged == set(offline["sequences"].tolist())
    # The logged offline share is what each batch drew from the offline buffer: offline_ratio, not the
    # takeovers that online draws also find (it used to read 1.0 with offline_ratio 0.25).
    shares = [r["offline_share"] for r in read_rows(tmp_path / "run" / "updates.csv")[-200:]]
    assert np.allclose(shares, OFFLINE_RATIO), sorted(set(shares))
    episodes = read_rows(tmp_path / "run" / "episodes.csv")
    assert any(e["interventions"] > 0 for e in episodes) and all(0 <= e["intervention_rate"] <= 1 for e in episodes)
    # The learner wrote the takeover segments as a LeRobotDataset: the same human transitions.
    from kuavo_rl.config import load_config
    from kuavo_rl.datasets import dataset_layout, load_dataset
    takeovers = load_dataset(tmp_path / "run" / "datasets" / "takeovers",
                             dataset_layout(load_config(REPO / "config" / "sim_pick_lift.yaml").env))
    assert len(takeovers.transitions) == offline["size"] and takeovers.transitions.intervention.all()
    assert takeovers.episodes >= 2  # one per contiguous takeover
    np.testing.assert_array_equal(np.sort(takeovers.transitions.actions, axis=0), np.sort(offline["actions"], axis=0))
