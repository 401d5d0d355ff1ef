"""Env node: serves a gymnasium env (toy target-action task or the simulator) over the env protocol.

lockstep: step as soon as the action for the current observation arrives (fast diagnostics).
realtime: step on the node's own clock at env.rate_hz. A tick whose action has not arrived is
skipped and counted as late, so that every transition records the action that was executed.
"""
from __future__ import annotations

import dataclasses
import os

from rclpy.node import Node

from kuavo_msgs.msg import ActionCommand, EnvObservation
from kuavo_rl import qos, topics
from kuavo_rl.codec import action_from_msg, observation_to_msg
from kuavo_rl.env_core import EnvStepper
from kuavo_rl.envs import make_env
from kuavo_rl.nodes.common import load_node_config, run_node
from kuavo_rl.nodes.guard import Guard
from kuavo_rl.protocol import ActionDecision

# Deliberate breakage for the pipeline check's negative control (`kuavo-rl pipeline-check --fault`):
# never set in normal use. reward_sign negates the reward terms and the raw reward on the wire.
FAULTS = ("", "reward_sign")


def inject_fault(observation, fault: str):
    if fault == "reward_sign":
        return dataclasses.replace(observation, reward_terms=-observation.reward_terms,
                                   raw_reward=-observation.raw_reward)
    return observation


class EnvNode(Node):
    def __init__(self):
        super().__init__("kuavo_env")
        self.cfg = load_node_config(self)
        self.republish_s = self.cfg.env.republish_period_s
        self.stepper = EnvStepper(make_env(self.cfg.env, seed=self.cfg.run.seed), seed=self.cfg.run.seed)
        self.realtime = self.cfg.env.timing == "realtime"
        self.fault = os.environ.get("KUAVO_RL_FAULT", "")
        if self.fault not in FAULTS:
            raise ValueError(f"KUAVO_RL_FAULT={self.fault!r} is not one of {FAULTS[1:]}")
        if self.fault:
            self.get_logger().warning(f"FAULT INJECTED: {self.fault} (pipeline-check negative control)")
        self.guard = Guard(self, self.cfg, "env")
        self.pub = self.create_publisher(EnvObservation, topics.OBSERVATION, qos.STEP)
        self.guard.subscribe(ActionCommand, topics.ACTION, self.on_action, qos.STEP)
        self.pending: ActionDecision | None = None
        self.late_actions = 0
        self.done = False
        self.publish(self.stepper.reset())
        self.create_timer(self.republish_s, self.republish_if_idle)
        if self.realtime:
            self.create_timer(1.0 / self.cfg.env.rate_hz, self.realtime_tick)
        self.get_logger().info(
            f"env {self.cfg.env.name} ({self.cfg.env.timing}), action_dim {self.stepper.action_dim}, "
            f"reward terms {list(self.stepper.reward_term_names)}")

    def publish(self, observation) -> None:
        msg = observation_to_msg(EnvObservation(), inject_fault(observation, self.fault), self.stepper.reward_term_names,
                                 self.get_clock().now().to_msg())
        self.pub.publish(self.guard.sign(msg))
        self._published_at = self.get_clock().now()

    def on_action(self, msg: ActionCommand) -> None:
        decision = action_from_msg(msg, self.stepper.action_dim)
        if not self.stepper.answers_current(decision):
            return  # an answer to an older observation (a resend); the current one is still pending
        self.stepper.check(decision)
        if self.realtime:
            self.pending = decision
        else:
            self.publish(self.stepper.apply(decision))

    def realtime_tick(self) -> None:
        decision = self.pending
        if decision is None or not self.stepper.answers_current(decision):
            self.late_actions += 1
            return
        self.pending = None
        self.publish(self.stepper.apply(decision))

    def republish_if_idle(self) -> None:
        idle = (self.get_clock().now() - self._published_at).nanoseconds * 1e-9
        if idle >= self.republish_s:
            self.publish(self.stepper.current)

    def close(self) -> None:
        self.get_logger().info(f"env stepped {self.stepper.steps} times, {self.late_actions} late actions")


def main(args=None):
    raise SystemExit(run_node(EnvNode, args))


if __name__ == "__main__":
    main()
