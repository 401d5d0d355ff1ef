"""A learner whose critic diverges stops with exit code 3 and the reason, and leaves the last finite
checkpoint as the latest (it used to keep running with a dead training thread, stop acknowledging,
and save the NaN weights at shutdown)."""
from __future__ import annotations

import numpy as np
import pytest

import kuavo_msgs.msg as msgs
from helpers.pipeline import TWO_DIM, probe_node, start_toy_node, wait_for
from helpers.signing import run_signer
from kuavo_rl import qos, topics
from kuavo_rl.codec import batch_to_msg
from kuavo_rl.protocol import StepBatch

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

TERMS = ("action_error_sq_mean", "action_error_norm")


def batch(sequence: int, observation: float, n: int = 50) -> StepBatch:
    rows = [{"transition_sequence": sequence * n + i, "episode_id": sequence, "step_index": i + 1,
             "observation": np.full(3, observation), "action": np.zeros(2), "next_observation": np.full(3, observation),
             "reward_terms": [0.1, 0.3], "raw_reward": -0.1, "terminated": False, "truncated": False,
             "intervention": False, "evaluation": False, "policy_version": 0} for i in range(n)]
    return StepBatch.from_rows("diverger", sequence, 3, 2, TERMS, rows, actor_incarnation="p1")


def test_diverged_training_exits_3_with_the_reason_and_keeps_the_last_finite_checkpoint(tmp_path, rclpy_context):
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.supervisor import stop_node
    overrides = TWO_DIM + ["algo.backend=sb3_sac", "algo.learning_starts=50", "algo.batch_size=32",
                           "learner.max_abs_value=1e38", "algo.observation_normalization=none",
                           "learner.checkpoint_period_s=0.2", "run.progress_line=false"]
    learner = start_toy_node("learner", tmp_path, overrides)
    node, executor = probe_node(rclpy_context, "diverging_actor")
    acks = []
    node.create_subscription(msgs.BatchAck, topics.TRANSITIONS_ACK, acks.append, qos.ACKS)
    publisher = node.create_publisher(msgs.TransitionBatch, topics.TRANSITIONS, qos.TRANSITIONS)
    signer = run_signer(tmp_path)
    try:
        wait_for(lambda: publisher.get_subscription_count() > 0, 60, "the learner to subscribe")
        for sequence in range(2):  # sane data: trains, and is checkpointed
            publisher.publish(signer.sign(batch_to_msg(msgs.TransitionBatch(), batch(sequence, 0.5))))
        wait_for(lambda: executor.spin_once(timeout_sec=0.1) or any(a.persisted for a in acks), 60,
                 "a checkpoint of the sane data", poll_s=0)
        publisher.publish(signer.sign(batch_to_msg(msgs.TransitionBatch(), batch(2, 3e37))))  # finite, but ...
        code = learner.popen.wait(timeout=120)
    finally:
        node.destroy_node()
        stop_node(learner)
    log = (tmp_path / "logs" / "learner.log").read_text()
    assert code == 3, log[-3000:]
    assert "training diverged, stopping without saving the non-finite state" in log
    latest = load_latest(tmp_path / "checkpoints")
    assert latest["counters"]["env_steps"] == 100  # the last checkpoint holds only the sane data ...
    for tensor in latest["backend"]["inner"]["policy"].values():
        assert bool(np.isfinite(tensor.numpy()).all())  # ... and finite weights, so a restart can resume
