"""Actor node: answers env observations with policy (or human takeover) actions, streams
sequenced transition batches to the learner, and swaps in newer weights."""
from __future__ import annotations

import time
from pathlib import Path

import yaml
from rclpy.node import Node

from kuavo_msgs.msg import (ActionCommand, ActorStatus, BatchAck, EnvObservation, EpisodeLabel, Intervention,
                            LearnerStatus, PolicyWeights, TransitionBatch)
from kuavo_rl import qos, topics
from kuavo_rl.actor_core import ActorCore
from kuavo_rl.algos import make_actor_policy
from kuavo_rl.auth import AuthError, Verifier
from kuavo_rl.codec import (acks_from_msg, action_to_msg, actor_status_to_msg, batch_to_msg, intervention_from_msg,
                            label_from_msg, observation_from_msg)
from kuavo_rl.envs import env_spec
from kuavo_rl.nodes.common import load_node_config, run_node
from kuavo_rl.nodes.guard import Guard
from kuavo_rl.progress import ProgressLine
from kuavo_rl.protocol import LABEL_NAMES, StepObservation
from kuavo_rl.threads import set_torch_threads

# After finishing, the actor stays this long, repeating its last status (finished) every
# FINISH_REPEAT_S, so that the learner hears it over a lossy link (it reads statuses best-effort).
FINISH_ANNOUNCE_S, FINISH_REPEAT_S = 0.5, 0.1


class ActorNode(Node):
    def __init__(self):
        super().__init__("kuavo_actor")
        self.cfg = load_node_config(self)
        self.actor_id = self.cfg.actor.actor_id
        self.summary_file = Path(self.cfg.run.run_dir) / "actor_summary.yaml"
        obs_dim, act_dim, terms = env_spec(self.cfg.env)
        set_torch_threads(self.cfg.actor.torch_threads)
        policy = make_actor_policy(self.cfg.algo, obs_dim, act_dim, self.cfg.run.seed + 7)
        self.core = ActorCore(self.cfg, obs_dim, act_dim, terms, policy, self.actor_id)
        self.guard = Guard(self, self.cfg, f"actor-{self.actor_id}")
        self.intervention_verifier = Verifier(self.guard.key)
        self.action_pub = self.create_publisher(ActionCommand, topics.ACTION, qos.STEP)
        self.batch_pub = self.create_publisher(TransitionBatch, topics.TRANSITIONS, qos.TRANSITIONS)
        self.status_pub = self.create_publisher(ActorStatus, topics.ACTOR_STATUS, qos.STATUS)
        self.guard.subscribe(EnvObservation, topics.OBSERVATION, self.on_observation, qos.STEP)
        self.guard.subscribe(PolicyWeights, topics.POLICY_WEIGHTS, self.on_weights, qos.LATEST_WEIGHTS)
        self.guard.subscribe(BatchAck, topics.TRANSITIONS_ACK, self.on_ack, qos.ACKS)
        # Not signed-only: an e-stop from anyone is obeyed; on_intervention checks the rest.
        self.guard.subscribe(Intervention, topics.INTERVENTION, self.on_intervention, qos.INTERVENTION, signed=False)
        self.guard.subscribe(EpisodeLabel, topics.EPISODE_LABEL, self.on_label, qos.EPISODE_LABEL)
        self.guard.subscribe(LearnerStatus, topics.LEARNER_STATUS, self.on_learner_status, qos.HEARTBEAT)
        self.create_timer(0.02, self.tick)
        self.create_timer(self.cfg.actor.status_period_s, self.report_status)
        self.progress = ProgressLine(self.cfg.run.total_env_steps, f"actor {self.actor_id}",
                                     enabled=self.cfg.run.progress_line)
        self.waiting: StepObservation | None = None  # an observation held while the learner catches up
        self.answered: dict[tuple[int, int], ActionCommand] = {}
        self.finished_at: float | None = None
        self.announced_at = 0.0
        self.done = False
        self.started = time.monotonic()
        self.get_logger().info(f"actor {self.actor_id} (process {self.core.incarnation}): backend "
                               f"{self.cfg.algo.backend}, {self.cfg.run.total_env_steps} env steps, action_dim {act_dim}")

    def on_observation(self, msg: EnvObservation) -> None:
        key = (msg.episode_id, msg.step_index)
        if key in self.answered:  # the env resent an observation we answered: resend the answer
            self.action_pub.publish(self.guard.sign(self.answered[key]))
            return
        core = self.core
        observation = observation_from_msg(msg, core.observation_dim, core.reward_term_names)
        core.check(observation)  # refused here: a held observation is answered later, from the timer
        self.waiting = observation
        self.answer_waiting()

    def answer_waiting(self) -> None:
        if self.waiting is None or self.core.waiting_for_learner():
            return
        observation, self.waiting = self.waiting, None
        decision = self.core.on_step(observation)
        if decision is None:
            return
        msg = action_to_msg(ActionCommand(), decision, self.get_clock().now().to_msg())
        self.answered = {(observation.episode_id, observation.step_index): msg}
        self.action_pub.publish(self.guard.sign(msg))

    def on_weights(self, msg: PolicyWeights) -> None:
        self.core.on_weights(msg.version, msg.learner_step, msg.backend, bytes(msg.data), msg.checksum,
                             msg.learner_run_id)

    def on_ack(self, msg: BatchAck) -> None:
        acks = acks_from_msg(msg)
        if (acks.actor_id, acks.incarnation) == (self.actor_id, self.core.incarnation):
            self.core.on_ack(msg.learner_run_id, acks)
            for seq, reason in zip(acks.rejected, acks.rejected_reasons):
                self.get_logger().error(f"learner rejected batch {seq}: {reason}")

    def on_intervention(self, msg: Intervention) -> None:
        try:
            self.intervention_verifier.verify(msg)
            authenticated = True
        except AuthError as error:
            if not msg.estop:
                raise
            self.get_logger().warning(f"e-stop obeyed although not signed by this run: {error}")
            authenticated = False
        self.core.on_intervention(intervention_from_msg(msg, time.monotonic(), authenticated))

    def on_label(self, msg: EpisodeLabel) -> None:
        label = label_from_msg(msg)
        if self.core.on_label(label):
            self.get_logger().info(f"operator ({label.source}) labels this episode {LABEL_NAMES[label.label]}")

    def on_learner_status(self, msg: LearnerStatus) -> None:
        if restored := self.core.on_learner_status(msg.learner_run_id):
            self.get_logger().warning(f"{restored.describe('the learner')}; {self.core.unpersisted_transitions} "
                                      f"unpersisted transitions are resent until persisted")

    def tick(self) -> None:
        self.answer_waiting()
        for batch in self.core.batches_to_send(self.cfg.actor.resend_after_s):
            try:
                self.batch_pub.publish(self.guard.sign(batch_to_msg(TransitionBatch(), batch)))
            except Exception as error:  # noqa: BLE001 - e.g. DDS history full on a long-lost link
                self.get_logger().warning(f"could not send batch {batch.sequence} ({error}); it is kept and resent")
        if self.core.all_delivered and self.finished_at is None:
            self.get_logger().info(f"finished: {self.core.env_steps} env steps, final evaluation returns "
                                   f"{[round(r, 3) for r in self.core.stats.final_eval_returns]}")
            self.finished_at = self.announced_at = time.monotonic()
            self.report_status()
        if self.finished_at is not None and time.monotonic() - self.announced_at >= FINISH_REPEAT_S:
            self.publish_status()
            self.announced_at = time.monotonic()
            self.done = self.announced_at - self.finished_at >= FINISH_ANNOUNCE_S

    def report_status(self) -> None:
        """The actor's status (the learner's heartbeat from it), a lost learner link, the progress line."""
        core = self.core
        if lost := core.check_learner_link():
            behaviour = "holding" if self.cfg.actor.on_learner_lost == "hold" else "acting on with the current policy"
            self.get_logger().warning(f"{lost.describe('the learner')}; {behaviour}, every batch kept until the "
                                      f"learner has persisted it")
        status = self.publish_status()
        self.progress.update(min(status.env_steps, self.cfg.run.total_env_steps),
                             f"episodes {status.episodes} policy v{status.policy_version} unpersisted "
                             f"{status.unpersisted_transitions} transitions ({status.unpersisted_batches} batches) "
                             f"learner {core.learner_link.describe()}" + (" | paused" if status.waiting_for_learner
                                                                          else ""),
                             force=lost is not None)  # a lost link is shown at once, not up to a period later

    def publish_status(self):
        status = self.core.status()
        self.status_pub.publish(self.guard.sign(actor_status_to_msg(ActorStatus(), status,
                                                                    self.get_clock().now().to_msg())))
        return status

    def close(self) -> None:
        """Write the actor's summary (counts, final evaluation returns) into the run directory."""
        stats = self.core.stats
        summary = {"actor_id": self.actor_id, "incarnation": self.core.incarnation, "env_steps": self.core.env_steps,
                   "run_env_steps": self.core.run_env_steps,
                   "transitions_sent": self.core.next_transition_sequence,
                   "batches_sent": self.core.next_batch_sequence, "finished": bool(self.core.finished),
                   "final_eval_raw_returns": [float(r) for r in stats.final_eval_returns],
                   "weights_rejected": stats.weights_rejected, "policy_version": self.core.policy_version,
                   "learner_link_outages_s": [round(s, 2) for s in self.core.learner_link.outages_s],
                   "wall_time_s": time.monotonic() - self.started}
        self.summary_file.parent.mkdir(parents=True, exist_ok=True)
        self.summary_file.write_text(yaml.safe_dump(summary))


def main(args=None):
    raise SystemExit(run_node(ActorNode, args))


if __name__ == "__main__":
    main()
