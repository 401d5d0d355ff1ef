"""Env node: serves a gymnasium env (toy target-action task, a simulator, or the Kuavo bridge) over
the env protocol.

lockstep: step as soon as the action for the current observation arrives (fast diagnostics; the
Kuavo bridge is paced by the robot's own clock).
realtime: step on the node's own clock at env.rate_hz. A tick whose action has not arrived is
skipped and counted as late, so that every transition records the action that was executed.

A robot that cannot step (stale state, a refused command) makes the env hold: the node says why,
retries the same step every RETRY_PERIOD_S, and says when it resumes.
"""
from __future__ import annotations

import dataclasses
import os
import time

from rclpy.node import Node

from kuavo_msgs.msg import ActionCommand, EnvObservation
from kuavo_msgs.srv import ConfirmReset
from kuavo_rl import qos, topics
from kuavo_rl.codec import action_from_msg, observation_to_msg
from kuavo_rl.protocol import LABEL_NAMES, LABEL_NONE
from kuavo_rl.env_core import EnvStepper, EnvUnavailable, HoldReport
from kuavo_rl.envs import KUAVO_ENVS, make_env
from kuavo_rl.nodes.common import load_node_config, on_new_subscriber, run_node
from kuavo_rl.nodes.guard import Guard
from kuavo_rl.protocol import ActionDecision

# Deliberate breakage for the pipeline check's negative control (`kuavo-rl pipeline-check --fault`):
# never set in normal use. reward_sign negates the reward terms and the raw reward on the wire.
FAULTS = ("", "reward_sign")
RETRY_PERIOD_S = 0.1


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
        env = make_env(self.cfg.env, seed=self.cfg.run.seed, log=self.get_logger().warning,
                       robot_link=self.robot_link())
        self.stepper = EnvStepper(env, seed=self.cfg.run.seed)
        self.realtime = self.cfg.env.timing == "realtime"
        self.fault = os.environ.get("KUAVO_RL_FAULT", "")
        if self.fault not in FAULTS:
            raise ValueError(f"KUAVO_RL_FAULT={self.fault!r} is not one of {FAULTS[1:]}")
        if self.fault:
            self.get_logger().warning(f"FAULT INJECTED: {self.fault} (pipeline-check negative control)")
        self.guard = Guard(self, self.cfg, "env")
        self.pub = self.create_publisher(EnvObservation, topics.OBSERVATION, qos.STEP,
                                         event_callbacks=on_new_subscriber(self.republish_current))
        self.guard.subscribe(ActionCommand, topics.ACTION, self.on_action, qos.STEP)
        self.pending: ActionDecision | None = None
        self.late_actions = 0
        self.done = False
        self.hold_report = HoldReport()
        self.held: ActionDecision | None = ActionDecision(0, 0, None, reset=True)  # the first reset
        self._published_at = self.get_clock().now()
        self.create_timer(RETRY_PERIOD_S, self.retry_held)
        self.retry_held()
        self.create_timer(self.republish_s / 2, self.republish_if_idle)  # so an idle period of republish_s is seen
        if hasattr(env, "confirm_reset"):  # a robot bridge: the operator confirms the scene before each episode
            self.create_service(ConfirmReset, topics.CONFIRM_RESET, self.on_confirm_reset)
        if self.realtime:
            self.create_timer(1.0 / self.cfg.env.rate_hz, self.realtime_tick)
        self.get_logger().info(
            f"env {self.cfg.env.name} ({self.cfg.env.timing}), action_dim {self.stepper.action_dim}, "
            f"reward terms {list(self.stepper.reward_term_names)}")

    def robot_link(self):
        """Leju's topics and services over DDS, for the Kuavo bridge (None for any other env)."""
        env = self.cfg.env
        if env.name not in KUAVO_ENVS or env.kuavo.link != "ros2":
            return None
        from kuavo_rl.kuavo.ros2_link import Ros2Link
        return Ros2Link(env.kuavo, log=self.get_logger().warning)

    def publish(self, observation) -> None:
        msg = observation_to_msg(EnvObservation(), inject_fault(observation, self.fault), self.stepper.reward_term_names,
                                 self.get_clock().now().to_msg())
        self.pub.publish(self.guard.sign(msg))
        self._published_at = self.get_clock().now()

    def on_action(self, msg: ActionCommand) -> None:
        decision = action_from_msg(msg, self.stepper.action_dim)
        if self.held is not None or not self.stepper.answers_current(decision):
            return  # holding (the held step is retried), or an answer to an older observation (a resend)
        self.stepper.check(decision)
        if self.realtime:
            self.pending = decision
        else:
            self.apply(decision)

    def realtime_tick(self) -> None:
        decision = self.pending
        if decision is None or not self.stepper.answers_current(decision):
            self.late_actions += 1
            return
        self.pending = None
        self.apply(decision)

    def apply(self, decision: ActionDecision) -> None:
        """Step (or reset) and publish; an env that cannot step now holds, and the step is retried."""
        try:
            observation = self.stepper.apply(decision)
        except EnvUnavailable as error:
            self.held = decision
            message = self.hold_report.hold(str(error), time.monotonic())
            if message:
                self.get_logger().warning(message)
            return
        self.held = None
        message = self.hold_report.resume(time.monotonic())
        if message:
            self.get_logger().info(message)
        if decision.label != LABEL_NONE:
            self.get_logger().info(f"episode {observation.episode_id} labelled {LABEL_NAMES[decision.label]} by the "
                                   f"operator at step {observation.step_index}: it ends here")
        self.publish(observation)

    def on_confirm_reset(self, request, response):
        response.accepted, response.message = True, self.stepper.env.confirm_reset(request.confirmed_by)
        return response  # the waiting reset goes ahead at the next retry

    def retry_held(self) -> None:
        if self.held is not None:
            self.apply(self.held)

    def republish_if_idle(self) -> None:
        idle = (self.get_clock().now() - self._published_at).nanoseconds * 1e-9
        if idle >= self.republish_s:
            self.republish_current()

    def republish_current(self) -> None:
        """The current observation again (unanswered, or for an actor that has just subscribed)."""
        if self.stepper.current is not None and self.held is None:
            self.publish(self.stepper.current)

    def close(self) -> None:
        self.get_logger().info(f"env stepped {self.stepper.steps} times, {self.late_actions} late actions")
        self.stepper.env.close()


def main(args=None):
    raise SystemExit(run_node(EnvNode, args))


if __name__ == "__main__":
    main()
