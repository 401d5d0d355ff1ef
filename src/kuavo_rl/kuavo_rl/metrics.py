"""Evaluation measures shared by the run summary, the sweep report and the pipeline check.

- Reference returns: the uniform-random policy's return (the floor a learning curve must leave)
  and the toy task's optimal return, both under a given reward shaping or under the env's own
  (raw) reward. The raw env reward is the same for every shaping, so scores computed from it
  compare across reward type, shift and scale.
- Task score: (R - R_random) / (R_optimal - R_random); 0 = random policy, 1 = optimal.
- Normalised AUC: the area under an evaluation curve divided by its env-step span (the mean value
  over the run), after collapsing evaluations logged at the same env step to their mean.

Nothing here writes files or starts processes.
"""
from __future__ import annotations

import copy

import numpy as np

from kuavo_rl.config import ExperimentConfig, RewardConfig
from kuavo_rl.envs import env_spec, inprocess_variant, make_env
from kuavo_rl.reward import RewardShaper


def raw_reward_config(cfg: ExperimentConfig) -> ExperimentConfig:
    """A copy of cfg whose reward is the env's raw reward (no shaping)."""
    raw_cfg = copy.deepcopy(cfg)
    raw_cfg.reward = RewardConfig(type="env")
    return raw_cfg


def random_policy_return(cfg: ExperimentConfig, episodes: int = 3, seed: int = 12345) -> float:
    """Mean shaped return (under cfg.reward) of uniform random actions: the floor a learning curve must leave.
    For the Kuavo it is measured on the simulated Kuavo in this process (never on a robot)."""
    env = make_env(inprocess_variant(cfg.env), seed=seed)
    shaper = RewardShaper(cfg.reward, env.reward_term_names)
    rng = np.random.default_rng(seed)
    returns = []
    for _ in range(episodes):
        env.reset(seed=int(rng.integers(1 << 31)))
        total, done = 0.0, False
        while not done:
            _, raw, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            total += float(shaper(info["reward_terms"][None], np.array([raw]))[0])
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def optimal_return(cfg: ExperimentConfig) -> float | None:
    """Shaped return (under cfg.reward) of a perfect episode of the toy task (every action error 0, raw env
    reward 0); None for other tasks, whose optimum is not known."""
    if cfg.env.name != "toy":
        return None
    terms = env_spec(cfg.env).reward_term_names
    shaper = RewardShaper(cfg.reward, terms)
    return float(shaper(np.zeros((1, len(terms)), np.float32), np.zeros(1))[0]) * cfg.env.episode_steps


def reference_returns(cfg: ExperimentConfig, raw: bool = False) -> tuple[float, float | None]:
    """(random-policy return, optimal return) under cfg's reward shaping, or with raw=True under the env's
    own reward (the same for every shaping, so task scores compare across reward type, shift and scale)."""
    if raw:
        cfg = raw_reward_config(cfg)
    return random_policy_return(cfg), optimal_return(cfg)


def score_span(random_return: float, optimum: float | None) -> float | None:
    """R_optimal - R_random, or None when there is no learnable range to normalise by."""
    return (optimum - random_return) if optimum is not None and optimum != random_return else None


def task_score(returns, random_return: float, optimum: float | None) -> np.ndarray:
    """(R - R_random) / (R_optimal - R_random) elementwise; the returns unchanged if there is no range."""
    span = score_span(random_return, optimum)
    returns = np.asarray(returns, float)
    return (returns - random_return) / span if span else returns


def collapse_by_step(steps, values) -> tuple[np.ndarray, np.ndarray]:
    """(unique env steps, mean of the values logged at each): final evaluations share one env step."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    xs = np.unique(steps)
    return xs, np.array([values[steps == x].mean() for x in xs])


def normalised_auc(steps, values) -> float:
    """Area under the curve (trapezoid, after collapse_by_step) divided by its env-step span, i.e. the mean
    value over the run; the single value if everything was logged at one env step."""
    xs, ys = collapse_by_step(steps, values)
    return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0])) if len(xs) > 1 else float(ys[0])
