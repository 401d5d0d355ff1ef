"""Learner node: RLPD-style SAC over transitions from any number of actors.

ROS callbacks only queue messages; one training thread owns the LearnerLoop (ingest, updates,
weights, checkpoints, acks), so a slow update never blocks DDS and no state is shared between threads.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid

import numpy as np
from rclpy.node import Node

from kuavo_msgs.msg import ActorStatus, BatchAck, LearnerStatus, PolicyWeights, TransitionBatch
from kuavo_msgs.srv import SaveCheckpoint
from kuavo_rl import qos, topics
from kuavo_rl.codec import acks_to_msg, actor_status_from_msg, batch_from_msg, to_array
from kuavo_rl.envs import env_spec, observation_names
from kuavo_rl.learner_core import TrainingDiverged
from kuavo_rl.learner_loop import LearnerLoop
from kuavo_rl.link_watch import PeerLinks
from kuavo_rl.nodes.common import load_node_config, run_node
from kuavo_rl.nodes.guard import Guard
from kuavo_rl.protocol import Acks
from kuavo_rl.threads import learner_threads, set_torch_threads

# The learner's exit code when training stopped on a non-finite loss or parameter (or a bug):
# distinct from a configuration error (2), so a supervisor can tell them apart.
EXIT_TRAINING_FAILED = 3

# Updates per pass of the training thread: small chunks keep acks and weights prompt.
UPDATES_PER_PASS = 10


class LearnerNode(Node):
    def __init__(self):
        super().__init__("kuavo_learner")
        self.cfg = load_node_config(self)
        self.torch_threads = set_torch_threads(learner_threads(self.cfg.learner.torch_threads))
        self.run_id = uuid.uuid4().hex[:12]
        # Subscribed before the seconds of building the learner (lerobot's import, the networks, a resume):
        # the batches the actor sends meanwhile wait in the reader's history instead of being lost and resent.
        self.guard = Guard(self, self.cfg, "learner")
        self.inbox: queue.Queue = queue.Queue()
        self.guard.subscribe(TransitionBatch, topics.TRANSITIONS, self.inbox_put, qos.TRANSITIONS)
        self.loop = LearnerLoop(self.cfg, env_spec(self.cfg.env), self.cfg.run.run_dir)
        if self.cfg.learner.resume and (restored := self.loop.resume()):
            self.get_logger().info(restored)
        core = self.loop.core
        for warning in core.config_warnings:
            self.get_logger().warning(f"reward lint: {warning}")
        self.get_logger().info(f"learner {self.run_id}: backend {self.cfg.algo.backend}, target entropy "
                               f"{core.backend.target_entropy_rule}, device {core.device}, {self.torch_threads} "
                               f"torch thread(s), run dir {self.cfg.run.run_dir}")
        if quirks := self.cfg.quirks_summary():
            self.get_logger().warning(quirks)
        if demos := self.loop.demonstrations_summary():
            self.get_logger().info(demos)
        names = observation_names(self.cfg.env)
        self.get_logger().info(f"observation ({len(names)}): {', '.join(names)}; in {self.loop.spaces_file}")

        self.weights_pub = self.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, qos.LATEST_WEIGHTS)
        self.ack_pub = self.create_publisher(BatchAck, topics.TRANSITIONS_ACK, qos.ACKS)
        self.status_pub = self.create_publisher(LearnerStatus, topics.LEARNER_STATUS, qos.STATUS)
        self.guard.subscribe(ActorStatus, topics.ACTOR_STATUS, self.on_actor_status, qos.HEARTBEAT)
        # The actors' links: heard from in the ROS thread, checked and reported in the training thread.
        self.links = PeerLinks(self.cfg.learner.actor_timeout_s)
        self.links_lock = threading.Lock()
        self.create_service(SaveCheckpoint, topics.SAVE_CHECKPOINT, self.on_save_checkpoint)

        self.checkpoint_requests: queue.Queue = queue.Queue()
        self.reported_warnings: set[str] = set()
        self.stop = threading.Event()
        self.done = False  # the spin loop ends: training failed (exit_code 3) or every actor finished
        self.exit_code = 0
        self.started = time.monotonic()
        self.last_status = 0.0
        self.thread = threading.Thread(target=self.training_loop, name="training", daemon=True)
        self.thread.start()

    # ---- ROS side: queue only ------------------------------------------------------------------
    def inbox_put(self, msg: TransitionBatch) -> None:
        self.inbox.put(msg)

    def on_actor_status(self, msg: ActorStatus) -> None:
        status = actor_status_from_msg(msg)
        with self.links_lock:
            restored = self.links.heard(status.actor_id, status)
        if restored:
            self.get_logger().warning(f"{restored.describe(f'actor {status.actor_id}')}; it holds "
                                      f"{status.unpersisted_transitions} unpersisted transitions")

    def on_save_checkpoint(self, request, response):
        done = queue.Queue()
        self.checkpoint_requests.put(done)
        try:
            path = done.get(timeout=60.0)
            response.success, response.path, response.message = True, str(path), "saved"
        except queue.Empty:
            response.success, response.message = False, "the training thread did not answer within 60 s"
        return response

    # ---- training thread ------------------------------------------------------------------------
    def training_loop(self) -> None:
        """Train until stopped, then checkpoint. A non-finite loss or parameter (or any failure) ends
        the process instead: nothing is saved from that state, the last checkpoint stays the latest,
        and the actors resend whatever it does not hold to the next learner."""
        try:
            self.train_until_stopped()
            self.checkpoint()
        except TrainingDiverged as error:
            self.fail(f"training diverged, stopping without saving the non-finite state: {error}")
        except Exception as error:  # noqa: BLE001 - surface any failure instead of a silent dead thread
            self.fail(f"training thread failed, stopping without a checkpoint: {error!r}")

    def fail(self, reason: str) -> None:
        self.get_logger().fatal(reason)
        self.exit_code = EXIT_TRAINING_FAILED
        self.done = True

    def train_until_stopped(self) -> None:
        if warm_start := self.loop.warm_start(self.keep_alive):
            self.get_logger().info(warm_start)
        while not self.stop.is_set():
            worked = self.ingest_inbox()
            worked |= self.loop.train(UPDATES_PER_PASS) > 0
            if self.loop.core.weights_due():
                self.publish_weights()
            if not self.checkpoint_requests.empty() or self.loop.checkpoint_due():
                path = self.checkpoint()
                while not self.checkpoint_requests.empty():
                    self.checkpoint_requests.get().put(path)
            self.keep_alive()
            if self.actors_finished():
                return
            if not worked:
                time.sleep(0.005)

    def keep_alive(self) -> bool:
        """Publish the status when due (the actors' heartbeat, also during the warm start); True to stop."""
        if time.monotonic() - self.last_status >= self.cfg.learner.status_period_s:
            self.publish_status()
            self.last_status = time.monotonic()
        return self.stop.is_set()

    def actors_finished(self) -> bool:
        """With learner.stop_when_actors_finish (the learner side of two machines): every actor has
        finished and all its batches are ingested, so this learner is done."""
        if not self.cfg.learner.stop_when_actors_finish or not self.inbox.empty():
            return False
        with self.links_lock:
            if not self.links.all_finished():
                return False
            actors = ", ".join(sorted(self.links.statuses))
        self.get_logger().info(f"every actor finished ({actors}); stopping (learner.stop_when_actors_finish)")
        self.done = True  # the spin loop ends; close() joins this thread after its final checkpoint
        return True

    def ingest_inbox(self) -> bool:
        acks: dict[tuple[str, str], Acks] = {}  # per actor process
        while True:
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                break
            sender = (msg.actor_id, msg.actor_incarnation)
            if sender not in acks:
                acks[sender] = self.loop.new_acks(*sender)
            ack = acks[sender]
            try:
                rejected = self.loop.receive(batch_from_msg(msg), ack)
            except Exception as error:  # noqa: BLE001 - malformed (array lengths) or anything unforeseen
                rejected = self.loop.reject(msg.sequence, str(error), ack)
            if rejected:
                self.get_logger().error(f"batch {msg.actor_id}#{msg.sequence} rejected: {rejected}")
        for ack in acks.values():
            self.publish_acks(ack)
        return bool(acks)

    def publish_acks(self, ack: Acks) -> None:
        self.ack_pub.publish(self.guard.sign(acks_to_msg(BatchAck(), ack, self.run_id)))

    def checkpoint(self):
        path, acks = self.loop.checkpoint()
        for ack in acks:
            self.publish_acks(ack)
        return path

    def publish_weights(self) -> None:
        core = self.loop.core
        version, data, checksum = core.export_weights()
        msg = PolicyWeights(version=version, learner_run_id=self.run_id, learner_step=core.updates,
                            format=core.weights_format, backend=self.cfg.algo.backend, checksum=checksum)
        msg.data = to_array(np.frombuffer(data, np.uint8), np.uint8)
        self.weights_pub.publish(self.guard.sign(msg))

    def publish_status(self) -> None:
        core, m, last = self.loop.core, self.loop.core.last_metrics, self.loop.last_episode
        elapsed = max(time.monotonic() - self.started, 1e-9)
        update_rate = self.loop.recent_update_rate()
        warnings = core.warnings()
        for warning in warnings:
            if warning not in self.reported_warnings:
                self.get_logger().warning(f"reward lint: {warning}")
                self.reported_warnings.add(warning)
        learning_steps = max(core.env_steps - self.cfg.algo.learning_starts, 1)
        with self.links_lock:
            events = self.links.check()
            watches = [self.links.watches[actor] for actor in sorted(self.links.watches)]
            links_text = self.links.describe()
        for event in events:
            self.get_logger().warning(f"{event.describe(f'actor {event.peer}')}; its batches are acknowledged "
                                      f"when they arrive (the actor keeps them until they are persisted)")
        status = LearnerStatus(
            stamp=self.get_clock().now().to_msg(), backend=self.cfg.algo.backend, learner_run_id=self.run_id,
            learner_step=core.updates, env_steps=core.env_steps, policy_version=core.weights_version,
            updates_per_second=update_rate,
            env_steps_per_second=core.env_steps / elapsed, update_to_data_ratio=core.updates / learning_steps,
            critic_loss=m.get("critic_loss", 0.0), actor_loss=m.get("actor_loss", 0.0),
            temperature=m.get("temperature", 0.0), temperature_loss=m.get("temperature_loss", 0.0),
            q_mean=m.get("q_mean", 0.0), q_min=m.get("q_min", 0.0), q_max=m.get("q_max", 0.0),
            target_entropy=core.backend.target_entropy, target_entropy_rule=core.backend.target_entropy_rule,
            online_buffer_size=len(core.buffers.online), offline_buffer_size=len(core.buffers.offline),
            intervention_transitions=core.intervention_transitions,
            last_episode_return=last["return"], last_eval_return=last["eval"],
            last_episode_intervention_rate=last["intervention_rate"],
            batches_rejected=self.loop.batches_rejected, warnings=warnings,
            actor_ids=[w.peer for w in watches], actor_link_lost=[w.lost for w in watches],
            actor_silent_s=[w.silent_s for w in watches], actor_link_outages=[len(w.outages_s) for w in watches],
            actor_last_outage_s=[w.last_outage_s for w in watches])
        self.status_pub.publish(self.guard.sign(status))
        self.loop.report_progress(update_rate, force=bool(events), extra=links_text)  # a lost link is shown at once

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120.0)
        try:
            if written := self.loop.close():
                self.get_logger().info(written)
        except Exception as error:  # noqa: BLE001 - the checkpoint holds the recording; say so and go on
            self.get_logger().error(f"could not write the training recording ({error!r}); the checkpoint holds it "
                                    f"and the next learner of this run writes it")
        self.get_logger().info(f"learner stopped at {self.loop.core.updates} updates; checkpoint in "
                               f"{self.loop.checkpoint_dir}")


def main(args=None):
    raise SystemExit(run_node(LearnerNode, args))


if __name__ == "__main__":
    main()
