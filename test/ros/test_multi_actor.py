"""Several actor processes on one learner, and actors that restart: every transition that a process
sent and the learner received is kept exactly once, whichever process of an actor_id sent it.

A restarted actor is a new process (a new incarnation) that numbers its batches and transitions from 0
again. The learner keeps sequence numbers per process (actor_id/incarnation): with a ledger keyed by
actor_id alone, the restarted actor's batches would look like resends of the old process's and be
dropped as duplicates, which both tests below detect."""
from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
import rclpy
import yaml

import kuavo_msgs.msg as msgs
from helpers.pipeline import CONFIG, TWO_DIM, wait_for
from helpers.signing import run_signer
from kuavo_msgs.srv import SaveCheckpoint
from kuavo_rl import qos, topics
from kuavo_rl.actor_core import ActorCore
from kuavo_rl.algos import make_actor_policy
from kuavo_rl.codec import acks_from_msg, batch_to_msg
from kuavo_rl.config import load_config
from kuavo_rl.env_core import EnvStepper
from kuavo_rl.envs import env_spec, make_env

pytestmark = pytest.mark.slow  # separate ROS processes over DDS


# ---- two actors (one restarted twice) on a real learner process ---------------------------------------------
class ActorProcess:
    """One actor process, as nodes/actor_node.py runs it, with a local env in place of the env node:
    its own signer (a new sender), ActorCore, batches signed and published, acks handed to the core.
    Every observation carries `marker` in its first value, so the learner's buffer tells the
    processes apart (their transition sequence numbers all start at 0)."""

    def __init__(self, cfg, actor_id: str, marker: float, run_dir, publisher, seed: int):
        spec = env_spec(cfg.env)
        policy = make_actor_policy(cfg.algo, spec.observation_dim, spec.action_dim, seed)
        self.core = ActorCore(cfg, *spec, policy, actor_id)
        self.signer = run_signer(run_dir, f"actor-{actor_id}")
        self.stepper = EnvStepper(make_env(cfg.env, seed=seed), seed=seed)
        self.marker, self.publisher, self.resend_after_s = marker, publisher, cfg.actor.resend_after_s
        self.step = self.stepper.reset()
        self.sent: dict[int, object] = {}  # batch sequence -> StepBatch, every batch published at least once
        self.publications = 0
        self.received: set[int] = set()
        self.persisted: set[int] = set()
        self.acks_seen = 0

    def run(self, steps: int) -> None:
        for _ in range(steps):
            observation = self.step.observation.copy()
            observation[0] = self.marker
            decision = self.core.on_step(dataclasses.replace(self.step, observation=observation))
            self.step = self.stepper.apply(decision)
            self.publish_due()

    def publish_due(self) -> None:
        for batch in self.core.batches_to_send(self.resend_after_s):
            self.publisher.publish(self.signer.sign(batch_to_msg(msgs.TransitionBatch(), batch)))
            self.sent[batch.sequence] = batch
            self.publications += 1

    def end(self) -> None:
        """The end of a run: the transitions of the unfinished episode go out too."""
        self.core.flush()
        self.publish_due()

    def on_ack(self, msg) -> None:
        acks = acks_from_msg(msg)
        if (acks.actor_id, acks.incarnation) != (self.core.actor_id, self.core.incarnation):
            return
        self.acks_seen += 1
        if self.acks_seen % 4 == 1 and not acks.persisted:  # lost on the way: the core resends, the learner dedups
            return
        assert not acks.rejected, acks.rejected_reasons
        self.received |= set(acks.received)
        self.persisted |= set(acks.persisted)
        self.core.on_ack(msg.learner_run_id, acks)

    @property
    def all_received(self) -> bool:
        return set(self.sent) <= self.received | self.persisted and all(e.received for e in self.core.unacked.values())

    @property
    def all_persisted(self) -> bool:
        return not self.core.unacked

    def transitions(self) -> Counter:
        """(marker, transition sequence) of every transition in the batches this process sent."""
        return Counter((self.marker, int(s)) for batch in self.sent.values() for s in batch.transition_sequences)

    @property
    def sent_steps(self) -> int:
        return sum(batch.count for batch in self.sent.values())


def multi_actor_overrides() -> list[str]:
    return TWO_DIM + [
        "run.total_env_steps=100000000", "run.progress_line=false", "env.episode_steps=15",
        "algo.learning_starts=100000000",  # no training: this is about the data path
        "learner.checkpoint_period_s=1000",  # persisted only when the test asks (SaveCheckpoint)
        "actor.batch_transitions=10", "actor.eval_every_episodes=0", "actor.final_eval_episodes=0",
        "actor.resend_after_s=0.3"]


def test_two_actors_one_restarted_keep_every_transition_exactly_once(tmp_path, rclpy_context):
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.supervisor import start_node, stop_node, write_params_file
    run_dir = tmp_path / "run"
    overrides = multi_actor_overrides()
    params = write_params_file(run_dir / "params.yaml", str(CONFIG), overrides, run_dir)
    cfg = load_config(str(CONFIG), overrides, pipeline=True)

    node = rclpy.create_node("two_actors", context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    publisher = node.create_publisher(msgs.TransitionBatch, topics.TRANSITIONS, qos.TRANSITIONS)
    client = node.create_client(SaveCheckpoint, topics.SAVE_CHECKPOINT)
    processes: list[ActorProcess] = []  # every process that ever ran, the crashed ones too
    live: dict[str, ActorProcess] = {}
    node.create_subscription(msgs.BatchAck, topics.TRANSITIONS_ACK,
                             lambda msg: [p.on_ack(msg) for p in list(live.values())], qos.ACKS)

    def launch(actor_id: str, marker: float) -> ActorProcess:
        process = ActorProcess(cfg, actor_id, marker, run_dir, publisher, seed=len(processes))
        processes.append(process)
        live[actor_id] = process
        return process

    def pump(condition, what: str, timeout_s: float = 30.0):
        def step():
            executor.spin_once(timeout_sec=0.002)
            for process in live.values():
                process.publish_due()  # resends of unacknowledged batches
            assert learner.popen.poll() is None, "".join(learner.lines[-30:])
            return condition()
        return wait_for(step, timeout_s, what, poll_s=0)

    def run_both(steps: int) -> None:
        for _ in range(steps // 5):
            for process in live.values():
                process.run(5)
            executor.spin_once(timeout_sec=0.001)

    def save_checkpoint() -> None:
        future = client.call_async(SaveCheckpoint.Request())
        pump(future.done, "SaveCheckpoint", 60)
        assert future.result().success, future.result().message

    learner = start_node("learner", params, run_dir / "logs", echo=False)
    try:
        wait_for(lambda: publisher.get_subscription_count() > 0 and node.count_publishers(topics.TRANSITIONS_ACK) > 0,
                 60, "the learner")
        a, b1 = launch("actor-a", 1.0), launch("actor-b", 2.0)

        # actor-b's first process: crashes after everything it sent is acknowledged as persisted
        run_both(150)
        while not b1.core.pending_rows:  # crash mid-batch: those transitions were never sent, and are lost
            b1.run(1)
        pump(lambda: a.all_received and b1.all_received, "acks for the first batches")
        save_checkpoint()
        pump(lambda: b1.all_persisted, "actor-b's batches persisted")
        del live["actor-b"]

        # its second process: learns how far the first got; crashes with batches received, not yet persisted
        b2 = launch("actor-b", 3.0)
        run_both(150)
        pump(lambda: b2.all_received and a.all_received, "acks for the second process's batches")
        b2_learned = (b2.core.earlier_env_steps, b2.core.run_env_steps - b2.core.env_steps)
        unpersisted_at_crash = sum(e.received for e in b2.core.unacked.values())
        del live["actor-b"]

        # its third process runs to the end with actor-a
        b3 = launch("actor-b", 4.0)
        run_both(150)
        a.end()
        b3.end()
        pump(lambda: a.all_received and b3.all_received, "acks for the last batches")
        save_checkpoint()
        pump(lambda: a.all_persisted and b3.all_persisted, "everything persisted")
        assert learner.popen.poll() is None
        state = load_latest(run_dir / "checkpoints")
    finally:
        node.destroy_node()
        code = stop_node(learner)
    assert code == 0

    online = state["buffers"]["online"]
    stored = Counter(zip(online["observations"][:, 0].tolist(), online["sequences"].tolist()))
    expected = sum((p.transitions() for p in processes), Counter())
    assert stored == expected, f"missing {expected - stored}, extra or repeated {stored - expected}"
    assert max(stored.values()) == 1
    counters = state["counters"]
    assert counters["sender_env_steps"] == {
        "actor-a": {a.core.incarnation: a.sent_steps},
        "actor-b": {p.core.incarnation: p.sent_steps for p in (b1, b2, b3)}}
    assert counters["env_steps"] == sum(p.sent_steps for p in processes) == len(online["sequences"])
    assert state["ledger"]["below"] == {f"{p.core.actor_id}/{p.core.incarnation}": len(p.sent) for p in processes}
    assert not any(state["ledger"]["above"].values())
    # Each restarted process learned from the acks how far the earlier ones got, and counts on from there.
    assert b2_learned == (b1.sent_steps, b1.sent_steps) and b1.sent_steps > 0
    assert b3.core.earlier_env_steps == b1.sent_steps + b2.sent_steps
    assert b3.core.run_env_steps == b1.sent_steps + b2.sent_steps + b3.core.env_steps
    assert sum(p.publications for p in processes) > sum(len(p.sent) for p in processes), "some batches were resent"
    assert unpersisted_at_crash > 0, "the second process crashed with batches received but not yet persisted"


# ---- a relaunch into an existing run directory ---------------------------------------------------------------
def test_relaunch_into_existing_run_dir_keeps_the_new_actors_batches(tmp_path, ros_domain):
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.supervisor import start_node, stop_node, write_params_file
    run_dir, logs = tmp_path / "run", tmp_path / "run" / "logs"
    common = TWO_DIM + ["run.progress_line=false", "algo.learning_starts=100", "algo.batch_size=32",
                        "algo.hidden_dims=[32,32]", "env.episode_steps=50", "actor.eval_every_episodes=0",
                        "actor.final_eval_episodes=0", "actor.sync_with_learner=false"]  # the actor does not wait

    def launch(total_env_steps: int, name: str) -> dict:
        """learner, env, actor; the actor runs to total_env_steps (of the run) and exits; then the others stop."""
        params = write_params_file(run_dir / f"{name}.yaml", str(CONFIG),
                                   common + [f"run.total_env_steps={total_env_steps}"], run_dir)
        nodes = {"learner": start_node("learner", params, logs, echo=False)}
        nodes["env"] = start_node("env", params, logs, echo=False)
        nodes["actor"] = start_node("actor", params, logs, echo=False)
        try:
            wait_for(lambda: nodes["actor"].popen.poll() is not None or nodes["learner"].popen.poll() is not None,
                     60, f"the {name} actor to finish")
        finally:
            codes = {role: stop_node(nodes[role]) for role in ("actor", "env", "learner")}  # the learner saves last
        assert codes == {"learner": 0, "env": 0, "actor": 0}, (codes, "".join(nodes["actor"].lines[-20:]))
        summary = yaml.safe_load((run_dir / "actor_summary.yaml").read_text())
        assert summary["finished"], summary
        return summary

    first = launch(300, "first")
    state = load_latest(run_dir / "checkpoints")
    counters1 = state["counters"]
    assert counters1["env_steps"] == first["transitions_sent"] == first["env_steps"] >= 300

    second = launch(first["transitions_sent"] + 300, "second")
    state = load_latest(run_dir / "checkpoints")
    counters2 = state["counters"]
    log = (logs / "learner.log").read_text()
    assert f"{counters1['env_steps']} env steps" in log.split("resumed from", 1)[1].split("\n", 1)[0]

    # The new actor process: a new sender counting from 0, that continued the run where the first left it.
    assert second["incarnation"] != first["incarnation"]
    assert second["run_env_steps"] == first["transitions_sent"] + second["env_steps"]
    assert second["transitions_sent"] == second["env_steps"] > 0
    # Nothing dropped: the counters grew by exactly what the new process sent, each transition once.
    assert counters2["env_steps"] == counters1["env_steps"] + second["transitions_sent"]
    assert counters2["sender_env_steps"] == {"actor0": {first["incarnation"]: first["transitions_sent"],
                                                        second["incarnation"]: second["transitions_sent"]}}
    stored = Counter(state["buffers"]["online"]["sequences"].tolist())
    assert stored == Counter(range(first["transitions_sent"])) + Counter(range(second["transitions_sent"]))
    assert state["ledger"]["below"] == {f"actor0/{first['incarnation']}": first["batches_sent"],
                                        f"actor0/{second['incarnation']}": second["batches_sent"]}
    assert counters2["updates"] >= counters1["updates"]  # training resumed from the checkpoint

