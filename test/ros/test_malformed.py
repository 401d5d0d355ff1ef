"""Malformed transition batches sent to a running learner: each is rejected with a reason, the
learner keeps running, and the valid batch sent alongside is kept."""
from __future__ import annotations

import numpy as np
import pytest

import kuavo_msgs.msg as msgs
from helpers.pipeline import TWO_DIM, probe_node, start_toy_node, wait_for
from helpers.signing import run_signer
from kuavo_msgs.srv import SaveCheckpoint
from kuavo_rl import qos, topics
from kuavo_rl.codec import batch_to_msg
from kuavo_rl.protocol import StepBatch

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

TERMS = ("action_error_sq_mean", "action_error_norm")


def valid_batch(sequence: int, n: int = 20) -> StepBatch:
    rng = np.random.default_rng(sequence)
    rows = [{"transition_sequence": sequence * 1000 + i, "episode_id": sequence, "step_index": i + 1,
             "observation": np.zeros(3), "action": rng.uniform(-1, 1, 2), "next_observation": np.zeros(3),
             "reward_terms": [0.1, 0.3], "raw_reward": -0.1, "terminated": False, "truncated": False,
             "intervention": False, "evaluation": False, "policy_version": 0} for i in range(n)]
    return StepBatch.from_rows("tester", sequence, 3, 2, TERMS, rows)


def malformed_messages():
    wrong_dims = batch_to_msg(msgs.TransitionBatch(), valid_batch(1))
    wrong_dims.action_dim, wrong_dims.actions = 3, wrong_dims.actions * 1 + wrong_dims.actions[:20]
    nan = valid_batch(2)
    nan.raw_rewards[4] = np.nan
    truncated = batch_to_msg(msgs.TransitionBatch(), valid_batch(3))
    truncated.observations = truncated.observations[:-7]
    terms = batch_to_msg(msgs.TransitionBatch(), valid_batch(4))
    terms.reward_term_names = ["distance", "grasp"]
    return {1: ("dimension mismatch", wrong_dims), 2: ("NaN", batch_to_msg(msgs.TransitionBatch(), nan)),
            3: ("field 'observations' has", truncated), 4: ("reward terms", terms)}


def test_learner_rejects_malformed_batches_and_keeps_valid_data(tmp_path, rclpy_context):
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.supervisor import stop_node
    learner = start_toy_node("learner", tmp_path, TWO_DIM + ["env.obs_mode=zero_obs", "run.progress_line=false"])
    node, executor = probe_node(rclpy_context, "malformed_sender")
    acks = []
    node.create_subscription(msgs.BatchAck, topics.TRANSITIONS_ACK, acks.append, qos.ACKS)
    publisher = node.create_publisher(msgs.TransitionBatch, topics.TRANSITIONS, qos.TRANSITIONS)
    client = node.create_client(SaveCheckpoint, topics.SAVE_CHECKPOINT)
    try:
        signer = run_signer(tmp_path)
        wait_for(lambda: publisher.get_subscription_count() > 0, 60, "the learner to subscribe")
        for _, msg in malformed_messages().values():
            publisher.publish(signer.sign(msg))
        publisher.publish(signer.sign(batch_to_msg(msgs.TransitionBatch(), valid_batch(5))))

        def acknowledged():
            executor.spin_once(timeout_sec=0.1)
            rejected = {s: r for a in acks for s, r in zip(a.rejected, a.rejected_reasons)}
            received = {s for a in acks for s in list(a.received) + list(a.persisted)}
            return (rejected, received) if len(rejected) == 4 and 5 in received else None

        rejected, received = wait_for(acknowledged, 60, "acks for all five batches", poll_s=0)
        for sequence, (reason, _) in malformed_messages().items():
            assert reason in rejected[sequence], rejected[sequence]
        assert learner.popen.poll() is None, "the learner must keep running"
        future = client.call_async(SaveCheckpoint.Request())
        wait_for(lambda: executor.spin_once(timeout_sec=0.1) or future.done(), 60, "save_checkpoint")
        assert future.result().success
        state = load_latest(tmp_path / "checkpoints")
        assert sorted(state["buffers"]["online"]["sequences"].tolist()) == list(range(5000, 5020))
    finally:
        node.destroy_node()
        stop_node(learner)
    log = (tmp_path / "logs" / "learner.log").read_text()
    assert log.count("rejected:") == 4
