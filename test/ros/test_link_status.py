"""The learner side of two machines ends by itself when its actors say they have finished, and only
then: an actor status that is unsigned, from another run's key, replayed or without an actor id is
refused (a stranger cannot stop the training or fake a healthy link), and the learner's own
status, signed, lists the actor's link."""
from __future__ import annotations

import copy
import time

import pytest

import kuavo_msgs.msg as msgs
from helpers.pipeline import TWO_DIM, probe_node, start_toy_node, wait_for
from helpers.signing import run_signer
from kuavo_rl import qos, topics
from kuavo_rl.auth import Signer, Verifier, load_or_create_key
from kuavo_rl.codec import actor_status_to_msg
from kuavo_rl.protocol import ActorStatusInfo

pytestmark = pytest.mark.slow  # a learner process over DDS


def test_only_this_runs_finished_actor_status_stops_the_learner_side(tmp_path, rclpy_context):
    from kuavo_rl.supervisor import stop_node
    run_dir = tmp_path / "run"
    learner = start_toy_node("learner", run_dir, TWO_DIM + ["learner.stop_when_actors_finish=true",
                                                            "learner.status_period_s=0.2", "run.progress_line=false"])
    node, executor = probe_node(rclpy_context, "actor_status_probe")
    publisher = node.create_publisher(msgs.ActorStatus, topics.ACTOR_STATUS, qos.STATUS)
    statuses = []
    node.create_subscription(msgs.LearnerStatus, topics.LEARNER_STATUS, statuses.append, qos.STATUS)
    spin = lambda: executor.spin_once(timeout_sec=0.05)  # noqa: E731
    try:
        wait_for(lambda: spin() or statuses, 120, "the learner's first status")
        signer = run_signer(run_dir, "test-actor")
        finished = actor_status_to_msg(msgs.ActorStatus(), ActorStatusInfo("actor0", "inc", finished=True))
        stranger = Signer(load_or_create_key(tmp_path / "other.key"), "stranger")
        working = signer.sign(actor_status_to_msg(msgs.ActorStatus(), ActorStatusInfo("actor0", "inc")))
        no_id = signer.sign(actor_status_to_msg(msgs.ActorStatus(), ActorStatusInfo("", "inc", finished=True)))
        hostile = [copy.deepcopy(finished), stranger.sign(copy.deepcopy(finished)), working, copy.deepcopy(working),
                   no_id]
        for msg in hostile:  # unsigned, another run's, (genuine, still working), replayed, no actor id
            publisher.publish(msg)
            time.sleep(0.1)
        wait_for(lambda: spin() or (learner.log_path.exists()
                                    and learner.log_path.read_text().count("refused message on /kuavo_rl/actor/status")
                                    >= 4), 60, "four refusals")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            spin()
        assert learner.popen.poll() is None, "the learner stopped on a status it should have refused"
        log = learner.log_path.read_text()
        assert log.count("not from this run") >= 2, log[-3000:]  # unsigned; another run's key
        for reason in ("replayed message", "without an actor_id"):
            assert reason in log, (reason, log[-3000:])
        last = statuses[-1]
        Verifier(load_or_create_key(run_dir / "run.key")).verify(last)  # the learner's status is signed
        assert list(last.actor_ids) == ["actor0"] and list(last.actor_link_lost) == [False]
        publisher.publish(signer.sign(finished))
        wait_for(lambda: spin() or learner.popen.poll() is not None, 60, "the learner side to stop by itself")
        assert learner.popen.returncode == 0
        assert "every actor finished (actor0); stopping" in learner.log_path.read_text()
        assert (run_dir / "checkpoints" / "latest.pt").exists()
    finally:
        node.destroy_node()
        stop_node(learner)
