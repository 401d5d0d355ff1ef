"""`kuavo-rl record`: episodes from a controller into a LeRobotDataset.

Sources:
- `scripted`: the env's scripted expert with Gaussian action noise (the simulated Kuavo's box lift:
  approach, squeeze, lift; the toy task: the target action);
- `policy`: a trained run's deterministic policy (its latest checkpoint).
The env is stepped by the env node's own stepping code (`EnvStepper`), in this process (the
Kuavo envs on the in-process simulator), so a recording holds exactly the transitions training would.
Scripted and policy actions are not human: their intervention flag is 0.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kuavo_rl.config import ConfigError, ExperimentConfig
from kuavo_rl.datasets import DatasetRecorder, dataset_layout
from kuavo_rl.env_core import EnvStepper, EnvUnavailable
from kuavo_rl.envs import env_spec, inprocess_variant, make_env
from kuavo_rl.progress import ProgressLine
from kuavo_rl.protocol import ActionDecision, TransitionArrays

SOURCES = ("scripted", "policy")
MAX_HOLDS = 50  # consecutive holds of an in-process env before the recording gives up


class Controller:
    """Chooses actions for a recording: `reset()` at each episode start, then `act(observation)`."""

    def reset(self) -> None:
        pass

    def act(self, observation: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TargetActionExpert(Controller):
    """The toy task's expert: the target action, plus noise."""

    def __init__(self, action_dim: int, target: float, noise: float, seed: int):
        self.target = np.full(action_dim, target, np.float32)
        self.noise, self.rng = noise, np.random.default_rng(seed)

    def act(self, observation: np.ndarray) -> np.ndarray:
        noisy = self.target + self.rng.normal(0.0, self.noise, self.target.shape) if self.noise > 0 else self.target
        return np.clip(noisy, -1.0, 1.0).astype(np.float32)


class ScriptedKuavoExpert(Controller):
    def __init__(self, cfg: ExperimentConfig, noise: float, seed: int):
        from kuavo_rl.kuavo.scripted import controller_for
        self.controller = controller_for(cfg.env.kuavo, action_noise=noise, seed=seed)

    def reset(self) -> None:
        self.controller.reset()

    def act(self, observation: np.ndarray) -> np.ndarray:
        return self.controller.act(observation)


class PolicyController(Controller):
    """A run's trained policy (deterministic), restored from its latest checkpoint."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path):
        from kuavo_rl.algos import make_actor_policy, make_backend
        from kuavo_rl.checkpoint import load_latest
        state = load_latest(run_dir / "checkpoints")
        if state is None:
            raise ConfigError(f"--policy {run_dir}: no checkpoint under {run_dir / 'checkpoints'}")
        spec = env_spec(cfg.env)
        backend = make_backend(cfg.algo, spec.observation_dim, spec.action_dim, cfg.run.seed)
        backend.load_state_dict(state["backend"])
        self.policy = make_actor_policy(cfg.algo, spec.observation_dim, spec.action_dim, cfg.run.seed)
        self.policy.load_actor_state_dict(backend.actor_state_dict())

    def act(self, observation: np.ndarray) -> np.ndarray:
        return self.policy.act(observation, deterministic=True)


def make_controller(cfg: ExperimentConfig, source: str, noise: float, seed: int,
                    policy_run: str | None = None) -> Controller:
    if source == "policy":
        if not policy_run:
            raise ConfigError("--source policy needs --policy <run dir> (a training run with checkpoints)")
        return PolicyController(cfg, Path(policy_run))
    if source != "scripted":
        raise ConfigError(f"--source must be one of {', '.join(SOURCES)}, got '{source}'")
    env = cfg.env
    if env.name == "toy":
        return TargetActionExpert(env.action_dim, env.target, noise, seed)
    if env.name in ("kuavo", "kuavo_sim") and env.kuavo.task == "box_lift" and env.kuavo.action_mode == "ee_delta":
        if env.kuavo.observation_layout != _default_layout():
            raise ConfigError("the scripted box lift reads the default 32-value observation layout; "
                              "unset env.kuavo.observation_layout to record it")
        return ScriptedKuavoExpert(cfg, noise, seed)
    raise ConfigError(f"no scripted expert for env {env.name}"
                      + (f" (task {env.kuavo.task}, actions {env.kuavo.action_mode})" if env.name != "pick_lift" else "")
                      + "; scripted experts exist for toy and the Kuavo box lift with ee_delta actions")


def _default_layout() -> list[str]:
    from kuavo_rl.kuavo.settings import KuavoConfig
    return KuavoConfig().observation_layout


@dataclass
class RecordingResult:
    root: Path
    episodes: int
    transitions: int
    labels: dict[str, int]
    mean_return: float
    wall_time_s: float


def _apply_retrying(stepper: EnvStepper, decision: ActionDecision):
    """Step like the env node does: an env that holds (a robot without fresh state) is retried."""
    for _ in range(MAX_HOLDS):
        try:
            return stepper.apply(decision)
        except EnvUnavailable:
            time.sleep(0.01)
    raise EnvUnavailable(f"the env held {MAX_HOLDS} times in a row; recording stopped")


def run_episode(stepper: EnvStepper, controller: Controller) -> tuple[TransitionArrays, bool]:
    """One episode: its transitions and whether it ended by the time limit."""
    controller.reset()
    current = _apply_retrying(stepper, ActionDecision(0, 0, np.zeros(stepper.action_dim, np.float32), reset=True))
    rows = []
    while not (current.terminated or current.truncated):
        action = np.clip(np.asarray(controller.act(current.observation), np.float32), -1.0, 1.0)
        following = _apply_retrying(stepper, ActionDecision(current.episode_id, current.step_index, action))
        rows.append((current.observation, action, following))
        current = following
    transitions = TransitionArrays(
        observations=np.stack([r[0] for r in rows]), actions=np.stack([r[1] for r in rows]),
        reward_terms=np.stack([r[2].reward_terms for r in rows]),
        raw_rewards=np.array([r[2].raw_reward for r in rows], np.float32),
        next_observations=np.stack([r[2].observation for r in rows]),
        terminated=np.array([r[2].terminated for r in rows]), intervention=np.zeros(len(rows), bool),
        sequences=np.arange(len(rows), dtype=np.uint64))
    return transitions, bool(current.truncated and not current.terminated)


def record(cfg: ExperimentConfig, source: str, episodes: int, out: str | Path, noise: float = 0.1,
           policy_run: str | None = None, overwrite: bool = False, quiet: bool = False,
           on_episode: Callable[[int, str], None] | None = None) -> RecordingResult:
    """Record `episodes` episodes of `source` on the configured env (seeded by cfg.run.seed)."""
    if episodes < 1:
        raise ConfigError("--episodes must be >= 1")
    if noise < 0:
        raise ConfigError("--noise must be >= 0")
    seed = cfg.run.seed
    controller = make_controller(cfg, source, noise, seed, policy_run)
    env = make_env(inprocess_variant(cfg.env), seed=seed)
    stepper = EnvStepper(env, seed=seed)
    kuavo = cfg.env.name in ("kuavo", "kuavo_sim")
    recorder = DatasetRecorder(out, dataset_layout(cfg.env), fps=max(1, round(cfg.env.rate_hz)),
                               task=f"{cfg.env.name}: {cfg.env.kuavo.task if kuavo else cfg.env.name}",
                               env=cfg.to_dict()["env"], robot_type="kuavo" if kuavo else None, overwrite=overwrite)
    progress = ProgressLine(episodes, f"record {source}", enabled=not quiet)
    labels = {"success": 0, "failure": 0, "none": 0}
    returns, transitions, started = [], 0, time.monotonic()
    try:
        for index in range(episodes):
            episode, truncated = run_episode(stepper, controller)
            label = recorder.add_episode(episode, truncated, source, {"noise": noise, "seed": seed})
            labels[label] += 1
            returns.append(float(episode.raw_rewards.sum()))
            transitions += len(episode)
            if on_episode is not None:
                on_episode(index, label)
            progress.update(index + 1, f"episode {index} {label}, {len(episode)} steps, return {returns[-1]:.2f}; "
                                       f"success {labels['success']}/{index + 1}", force=index + 1 == episodes)
    finally:
        recorder.close()  # the episodes so far stay loadable if the recording is interrupted
        env.close()
    return RecordingResult(Path(out), episodes, transitions, labels, float(np.mean(returns)),
                           time.monotonic() - started)


def print_result(result: RecordingResult) -> None:
    print(f"[kuavo-rl record] {result.episodes} episodes, {result.transitions} transitions in "
          f"{result.wall_time_s:.1f} s -> {result.root}; labels: success {result.labels['success']}, failure "
          f"{result.labels['failure']}, none {result.labels['none']}; mean return {result.mean_return:.2f}",
          file=sys.stderr)
