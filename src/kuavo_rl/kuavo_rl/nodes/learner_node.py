"""Learner node: RLPD-style SAC over transitions from any number of actors.

ROS callbacks only queue messages; one training thread owns the LearnerCore (ingest, updates,
weights, checkpoints), so a slow update never blocks DDS and no state is shared between threads.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from rclpy.node import Node

from kuavo_msgs.msg import BatchAck, LearnerStatus, PolicyWeights, TransitionBatch
from kuavo_msgs.srv import SaveCheckpoint
from kuavo_rl import qos, topics
from kuavo_rl.checkpoint import load_latest, save_checkpoint
from kuavo_rl.codec import batch_from_msg, to_array
from kuavo_rl.inprocess import env_spec
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.nodes.common import declare, load_node_config, run_node
from kuavo_rl.progress import ProgressLine
from kuavo_rl.run_log import RunLog, drop_rows_after
from kuavo_rl.transitions import BatchError


class LearnerNode(Node):
    def __init__(self):
        super().__init__("kuavo_learner")
        self.cfg = load_node_config(self)
        run_dir = declare(self, "run_dir", "", "logs and checkpoints; empty = run.run_dir of the config")
        self.run_dir = Path(run_dir or self.cfg.run.run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.checkpoint_period_s = declare(self, "checkpoint_period_s", 5.0,
                                           "also checkpoint this often while new data is unpersisted")
        resume = declare(self, "resume", True, "continue from run_dir/checkpoints/latest.pt when it exists")
        self.quiet = declare(self, "quiet", False, "no periodic status line on stderr")
        torch.set_num_threads(self.cfg.learner.torch_threads)
        self.run_id = uuid.uuid4().hex[:12]
        obs_dim, act_dim, terms = env_spec(self.cfg)
        self.core = LearnerCore(self.cfg, obs_dim, act_dim, terms)
        self.log = RunLog(self.run_dir)
        if resume:
            self.resume()
        for warning in self.core.config_warnings:
            self.get_logger().warning(f"reward lint: {warning}")
        self.get_logger().info(f"learner {self.run_id}: backend {self.cfg.algo.backend}, target entropy "
                               f"{self.core.backend.target_entropy_rule}, run dir {self.run_dir}")

        self.weights_pub = self.create_publisher(PolicyWeights, topics.POLICY_WEIGHTS, qos.LATEST_WEIGHTS)
        self.ack_pub = self.create_publisher(BatchAck, topics.TRANSITIONS_ACK, qos.ACKS)
        self.status_pub = self.create_publisher(LearnerStatus, topics.LEARNER_STATUS, qos.STATUS)
        self.create_subscription(TransitionBatch, topics.TRANSITIONS, self.inbox_put, qos.TRANSITIONS)
        self.create_service(SaveCheckpoint, topics.SAVE_CHECKPOINT, self.on_save_checkpoint)

        self.inbox: queue.Queue = queue.Queue()
        self.checkpoint_requests: queue.Queue = queue.Queue()
        self.unpersisted: dict[str, set[int]] = defaultdict(set)
        self.batches_rejected = 0
        self.last_episode = {"return": float("nan"), "eval": float("nan"), "intervention_rate": 0.0}
        self.reported_warnings: set[str] = set()
        self.stop = threading.Event()
        self.progress = ProgressLine(self.cfg.run.total_env_steps, "learner", period_s=5.0, enabled=not self.quiet)
        self.started = time.monotonic()
        self._rate_mark = (self.started, self.core.updates)
        self.thread = threading.Thread(target=self.training_loop, name="training", daemon=True)
        self.thread.start()

    # ---- ROS side: queue only ------------------------------------------------------------------
    def inbox_put(self, msg: TransitionBatch) -> None:
        self.inbox.put(msg)

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
    def resume(self) -> None:
        state = load_latest(self.checkpoint_dir)
        if state is None:
            return
        self.core.load_state_dict(state)
        dropped = drop_rows_after(self.run_dir / "episodes.csv", "env_steps", self.core.env_steps)
        dropped += drop_rows_after(self.run_dir / "updates.csv", "updates", self.core.updates)
        self.get_logger().info(f"resumed from {self.checkpoint_dir / 'latest.pt'}: {self.core.updates} updates, "
                               f"{self.core.env_steps} env steps, weights v{self.core.weights_version} "
                               f"({dropped} log rows past the checkpoint dropped)")

    def training_loop(self) -> None:
        last_checkpoint = time.monotonic()
        last_status = 0.0
        try:
            while not self.stop.is_set():
                worked = self.ingest_inbox()
                for _ in range(min(self.core.updates_due(), 10)):  # small chunks keep acks prompt
                    metrics = self.core.train_step()
                    self.log.update(self.core.updates, self.core.env_steps, metrics, self.core.last_batch_offline_share)
                    worked = True
                    if self.core.updates % self.cfg.learner.checkpoint_every_updates == 0:
                        self.checkpoint()
                        last_checkpoint = time.monotonic()
                if self.core.weights_due():
                    self.publish_weights()
                pending_requests = not self.checkpoint_requests.empty()
                if pending_requests or (self.has_unpersisted() and time.monotonic() - last_checkpoint >= self.checkpoint_period_s):
                    path = self.checkpoint()
                    last_checkpoint = time.monotonic()
                    while not self.checkpoint_requests.empty():
                        self.checkpoint_requests.get().put(path)
                if time.monotonic() - last_status >= self.cfg.learner.status_period_s:
                    self.publish_status()
                    last_status = time.monotonic()
                if not worked:
                    time.sleep(0.005)
        except Exception as error:  # surface the failure instead of a silent dead thread
            self.get_logger().fatal(f"training thread failed: {error!r}")
            raise
        finally:
            self.checkpoint()

    def ingest_inbox(self) -> bool:
        acks: dict[str, BatchAck] = {}
        while True:
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                break
            ack = acks.setdefault(msg.actor_id, BatchAck(actor_id=msg.actor_id, learner_run_id=self.run_id))
            try:
                result = self.core.ingest(batch_from_msg(msg))
            except BatchError as error:
                self.batches_rejected += 1
                ack.rejected.append(msg.sequence)
                ack.rejected_reasons.append(str(error))
                self.get_logger().error(f"batch {msg.actor_id}#{msg.sequence} rejected: {error}")
                continue
            if result.duplicate and msg.sequence not in self.unpersisted[msg.actor_id]:
                ack.persisted.append(msg.sequence)  # already in the restored checkpoint
            else:
                self.unpersisted[msg.actor_id].add(msg.sequence)
                ack.received.append(msg.sequence)
            for record in result.episodes:
                self.log.episode(record)
                key = "eval" if record.evaluation else "return"
                self.last_episode[key] = record.episode_return
                if not record.evaluation:
                    self.last_episode["intervention_rate"] = record.intervention_rate
        for ack in acks.values():
            self.ack_pub.publish(ack)
        return bool(acks)

    def has_unpersisted(self) -> bool:
        return any(self.unpersisted.values())

    def checkpoint(self) -> Path:
        path = save_checkpoint(self.core.state_dict(), self.checkpoint_dir)
        self.log.flush()
        for actor_id, sequences in self.unpersisted.items():
            if sequences:
                self.ack_pub.publish(BatchAck(actor_id=actor_id, learner_run_id=self.run_id,
                                              persisted=sorted(sequences)))
        self.unpersisted.clear()
        return path

    def publish_weights(self) -> None:
        version, data, checksum = self.core.export_weights()
        msg = PolicyWeights(version=version, learner_run_id=self.run_id, learner_step=self.core.updates, format=self.core.weights_format,
                            backend=self.cfg.algo.backend, checksum=checksum)
        msg.data = to_array(np.frombuffer(data, np.uint8), np.uint8)
        self.weights_pub.publish(msg)

    def recent_update_rate(self) -> float:
        """Updates/s since the previous status (the rate now, not the average since start)."""
        now, updates = time.monotonic(), self.core.updates
        last_time, last_updates = self._rate_mark
        self._rate_mark = (now, updates)
        return (updates - last_updates) / max(now - last_time, 1e-9)

    def publish_status(self) -> None:
        core, m = self.core, self.core.last_metrics
        elapsed = max(time.monotonic() - self.started, 1e-9)
        update_rate = self.recent_update_rate()
        warnings = core.warnings()
        for warning in warnings:
            if warning not in self.reported_warnings:
                self.get_logger().warning(f"reward lint: {warning}")
                self.reported_warnings.add(warning)
        learning_steps = max(core.env_steps - self.cfg.algo.learning_starts, 1)
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
            last_episode_return=self.last_episode["return"], last_eval_return=self.last_episode["eval"],
            last_episode_intervention_rate=self.last_episode["intervention_rate"],
            batches_rejected=self.batches_rejected, warnings=warnings)
        self.status_pub.publish(status)
        self.progress.update(min(core.env_steps, self.cfg.run.total_env_steps),
                             f"updates {core.updates} ({update_rate:.1f}/s) "
                             f"return {self.last_episode['return']:.2f} eval {self.last_episode['eval']:.2f} "
                             f"buffers {len(core.buffers.online)}/{len(core.buffers.offline)} "
                             f"takeovers {core.intervention_transitions} "
                             f"(last episode {100 * self.last_episode['intervention_rate']:.0f}%)")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=120.0)
        self.log.close()
        self.get_logger().info(f"learner stopped at {self.core.updates} updates; checkpoint in {self.checkpoint_dir}")


def main(args=None):
    raise SystemExit(run_node(LearnerNode, args))


if __name__ == "__main__":
    main()
