"""The scripted box lift (ScriptedBoxLift as the policy) through the Kuavo bridge's real interfaces:
the env protocol in-process (`EnvStepper`, what the env node runs) or over DDS (the kuavo_sim node
and the env node as processes, this process the actor with signed actions). Success is the bridge's
own judge: the terminal step's reward term `success`. Shared by test/ros/test_kuavo_scripted_lift.py
and bench/kuavo_scripted_lift.py."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kuavo_rl.kuavo.scripted import ACTION_DIM, BOX, ScriptedBoxLift
from kuavo_rl.kuavo.task import REWARD_TERM_NAMES
from kuavo_rl.protocol import ActionDecision, StepObservation

CONFIG = Path(__file__).resolve().parents[2] / "config" / "kuavo_sim_box_lift.yaml"
SUCCESS, FAILURE = REWARD_TERM_NAMES.index("success"), REWARD_TERM_NAMES.index("failure")


@dataclass
class EpisodeResult:
    episode_id: int
    steps: int
    success: bool  # terminated with the bridge's reward term success = 1
    failure: bool  # terminated with failure = 1 (the box fell)
    phase: str  # the controller's phase at the end
    lift_m: float  # box centre at the end, above where it was at the episode's first observation
    box_start: list[float]  # box centre (world) at the episode's first observation

    def as_dict(self) -> dict:
        return {**asdict(self), "lift_m": round(self.lift_m, 4), "box_start": [round(v, 4) for v in self.box_start]}


class ScriptedLiftPlayer:
    """Answers the env's observations with ScriptedBoxLift's actions and records each episode's
    outcome. The controller integrates every action it outputs, so it must see each step once: a
    repeated observation (the env node resends one that was not answered) gets the same answer."""

    def __init__(self, controller: ScriptedBoxLift):
        self.controller = controller
        self.results: list[EpisodeResult] = []
        self.env_steps = 0
        self._last: tuple[tuple[int, int], ActionDecision] | None = None
        self._box_start = np.zeros(3)

    def answer(self, obs: StepObservation) -> ActionDecision:
        key = (obs.episode_id, obs.step_index)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        if obs.step_index == 0:
            self.controller.reset()
            self._box_start = np.asarray(obs.observation[BOX], float).copy()
        else:
            self.env_steps += 1
        if obs.terminated or obs.truncated:
            terms = np.asarray(obs.reward_terms)
            self.results.append(EpisodeResult(
                obs.episode_id, obs.step_index, bool(obs.terminated and terms[SUCCESS] == 1.0),
                bool(obs.terminated and terms[FAILURE] == 1.0), self.controller.phase,
                float(obs.observation[BOX][2] - self._box_start[2]), self._box_start.tolist()))
            decision = ActionDecision(*key, np.zeros(ACTION_DIM, np.float32), reset=True)
        else:
            decision = ActionDecision(*key, np.asarray(self.controller(obs.observation), np.float32))
        self._last = (key, decision)
        return decision

    @property
    def successes(self) -> int:
        return sum(r.success for r in self.results)


def summary(results: list[EpisodeResult], env_steps: int, seconds: float) -> dict:
    """Success count and rate, mean steps to success, env steps per second."""
    won = [r.steps for r in results if r.success]
    return {"episodes": len(results), "successes": len(won), "success_rate": len(won) / max(len(results), 1),
            "mean_steps_to_success": float(np.mean(won)) if won else None,
            "failures": sum(r.failure for r in results),
            "truncated": sum(not r.success and not r.failure for r in results),
            "env_steps": env_steps, "seconds": round(seconds, 2), "env_steps_per_s": env_steps / max(seconds, 1e-9)}


def run_inprocess(env, player: ScriptedLiftPlayer, episodes: int, seed: int, on_episode=lambda player: None,
                  max_holds: int = 20) -> int:
    """`episodes` episodes through the env protocol in this process, as the env node steps it (the
    first reset seeded; an env that holds is retried). Returns how often it held."""
    from kuavo_rl.env_core import EnvStepper, EnvUnavailable
    stepper = EnvStepper(env, seed=seed)
    decision, holds = ActionDecision(0, 0, None, reset=True), 0
    while True:
        try:
            current = stepper.apply(decision)
        except EnvUnavailable:
            holds += 1
            if holds > max_holds:
                raise
            continue
        done = len(player.results)
        decision = player.answer(current)
        if len(player.results) > done:
            on_episode(player)
            if len(player.results) >= episodes:
                return holds


def start_robot_side(run_dir: Path, overrides=(), config: Path = CONFIG):
    """The robot PC's nodes as processes: the kuavo_sim node and the env node (the Kuavo bridge), with
    `config` plus `overrides`; run_dir holds their parameters, logs and the run key (created first)."""
    from helpers.pipeline import start_toy_node
    from kuavo_rl.launch_plan import prepare_run
    prepare_run(run_dir)
    return (start_toy_node("kuavo_sim", run_dir, list(overrides), config=config),
            start_toy_node("env", run_dir, list(overrides), config=config))


def stop_robot_side(sim, env) -> dict[str, int]:
    """The env node first (it hands the arms back: stop control mode), then the robot; exit codes."""
    from kuavo_rl.supervisor import stop_node
    return {node.name: stop_node(node) for node in (env, sim)}


class DdsActor:
    """This process as the actor: every observation of the env node (a resend too) goes to
    `answer(msg)`; the ActionDecision it returns (None: no answer) is published, signed with the run key."""

    def __init__(self, context, run_dir: Path, answer, name: str = "test_actor"):
        import kuavo_msgs.msg as msgs
        from helpers.pipeline import probe_node
        from helpers.signing import run_signer
        from kuavo_rl import qos, topics
        self.answer = answer
        self.observations = []
        self.signer = run_signer(run_dir)
        self.node, self.executor = probe_node(context, name)
        self.command = msgs.ActionCommand
        self.publisher = self.node.create_publisher(msgs.ActionCommand, topics.ACTION, qos.STEP)
        self.node.create_subscription(msgs.EnvObservation, topics.OBSERVATION, self._on_observation, qos.STEP)

    def _on_observation(self, msg) -> None:
        from kuavo_rl.codec import action_to_msg
        self.observations.append(msg)
        decision = self.answer(msg)
        if decision is not None:
            self.publisher.publish(self.signer.sign(action_to_msg(self.command(), decision)))

    def spin_until(self, condition, timeout_s: float, what: str):
        from helpers.pipeline import wait_for
        return wait_for(lambda: self.executor.spin_once(timeout_sec=0.02) or condition(), timeout_s, what, poll_s=0)

    def close(self) -> None:
        self.node.destroy_node()


class DdsScriptedLift:
    """The robot side as processes (`start_robot_side`); this process plays ScriptedBoxLift as the actor."""

    def __init__(self, context, run_dir: Path, player: ScriptedLiftPlayer, overrides: list[str] = (),
                 config: Path = CONFIG):
        self.player, self.episodes, self.on_episode = player, 0, lambda player: None
        self.actor = DdsActor(context, run_dir, self._answer, "scripted_lift_actor")
        self.sim, self.env = start_robot_side(run_dir, overrides, config)

    def _answer(self, msg) -> ActionDecision | None:
        from kuavo_rl.codec import observation_from_msg
        done = len(self.player.results)
        decision = self.player.answer(observation_from_msg(msg, reward_term_names=REWARD_TERM_NAMES))
        if len(self.player.results) > done:
            self.on_episode(self.player)
        if len(self.player.results) < self.episodes or not decision.reset:  # enough episodes: no further reset
            return decision
        return None

    def run(self, episodes: int, timeout_s: float, on_episode=None) -> None:
        """Play until `episodes` episodes have ended (on_episode(player) after each); RuntimeError when a
        node exits, TimeoutError after timeout_s (both with the node's last lines)."""
        self.episodes = episodes
        self.on_episode = on_episode or self.on_episode
        deadline = time.monotonic() + timeout_s
        while len(self.player.results) < episodes:
            for node in (self.sim, self.env):
                if node.popen.poll() is not None:
                    raise RuntimeError(f"the {node.name} node exited with code {node.popen.returncode}:\n"
                                       + "".join(node.lines[-20:]))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.player.results)}/{episodes} episodes after {timeout_s:g} s; env node:\n"
                                   + "".join(self.env.lines[-20:]))
            self.actor.executor.spin_once(timeout_sec=0.05)

    def close(self) -> dict[str, int]:
        """The actor, then the robot side; exit codes."""
        self.actor.close()
        return stop_robot_side(self.sim, self.env)
