"""In-process stable-baselines3 PPO on the same env and RewardShaper as the SAC backends.

It writes the same run directory as `inprocess.train_inprocess` (episodes.csv through RunLog,
TensorBoard), so PPO curves sit beside SAC curves in the sweep reports:
- training episodes come from the rollout (shaped return, raw env return, length);
- every `actor.eval_every_episodes`-th episode is a deterministic evaluation episode (the SAC actor
  makes every k-th episode an evaluation one; here, after k-1 training episodes one evaluation
  episode runs on a separate env copy), logged with evaluation=1; evaluation steps are not
  counted as env steps, as with SAC;
- after `run.total_env_steps` training steps, `actor.final_eval_episodes` evaluation episodes.

quirks.time_limit_as_terminal applies (the training env reports its time limit as terminal); the
other quirks concern a replay buffer or a temperature and are refused for PPO by the configuration.

Hyperparameters: algo.lr, algo.discount and the algo.ppo_* keys always apply. For the keys whose
configuration default is a SAC default (algo.batch_size, algo.hidden_dims, algo.grad_clip_norm),
PPO uses the value only if the user set it explicitly, else stable-baselines3's own default
(minibatch 64, net [64, 64], max_grad_norm 0.5): "defaults are the backend's own" (config.py).
grad_clip_norm 0 means no clipping.
"""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from kuavo_rl.config import ExperimentConfig
from kuavo_rl.envs import make_env
from kuavo_rl.learner_core import EpisodeRecord
from kuavo_rl.progress import ProgressLine
from kuavo_rl.reward import RewardShaper
from kuavo_rl.run_log import RunLog
from kuavo_rl.threads import learner_threads, set_torch_threads


class ShapedRewardWrapper(gym.Wrapper):
    """Replace the env reward by the configured shaped reward of info["reward_terms"];
    the env's own reward is kept in info["raw_reward"]."""

    def __init__(self, env: gym.Env, shaper: RewardShaper):
        super().__init__(env)
        self.shaper = shaper

    def step(self, action):
        obs, raw, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["raw_reward"] = float(raw)
        shaped = float(self.shaper(np.asarray(info["reward_terms"], np.float32)[None], np.array([raw]))[0])
        return obs, shaped, terminated, truncated, info


class TimeLimitAsTerminal(gym.Wrapper):
    """quirks.time_limit_as_terminal: report a time-limit truncation as a termination, so that
    stable-baselines3 does not bootstrap the value there."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated or truncated, False, info


def make_shaped_env(cfg: ExperimentConfig, seed: int | None = None, training: bool = True) -> gym.Env:
    """The env with the configured reward; for training, with the quirks that concern the env's signals."""
    env = make_env(cfg.env, seed=seed)
    shaped = ShapedRewardWrapper(env, RewardShaper(cfg.reward, env.reward_term_names))
    return TimeLimitAsTerminal(shaped) if training and cfg.quirks.time_limit_as_terminal else shaped


def ppo_kwargs(cfg: ExperimentConfig) -> dict:
    algo, explicit = cfg.algo, cfg.explicit
    kwargs = {"learning_rate": algo.lr, "gamma": algo.discount, "n_steps": algo.ppo_n_steps,
              "n_epochs": algo.ppo_n_epochs, "gae_lambda": algo.ppo_gae_lambda, "clip_range": algo.ppo_clip_range}
    if "algo.batch_size" in explicit:
        kwargs["batch_size"] = algo.batch_size
    if "algo.grad_clip_norm" in explicit:
        kwargs["max_grad_norm"] = algo.grad_clip_norm if algo.grad_clip_norm > 0 else float("inf")
    if "algo.hidden_dims" in explicit:
        kwargs["policy_kwargs"] = {"net_arch": {"pi": list(algo.hidden_dims), "vf": list(algo.hidden_dims)}}
    return kwargs


def _run_episode(model, env: gym.Env, seed: int) -> tuple[float, float, int]:
    obs, _ = env.reset(seed=seed)
    shaped = raw = 0.0
    length = 0
    while True:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        shaped += float(reward)
        raw += float(info["raw_reward"])
        length += 1
        if terminated or truncated:
            return shaped, raw, length


def train_ppo(cfg: ExperimentConfig, run_dir: str | Path, quiet: bool = False) -> dict:
    """Train SB3 PPO for cfg.run.total_env_steps; returns {'env_steps', 'final_eval_returns'}."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    set_torch_threads(learner_threads(cfg.learner.torch_threads))
    total = cfg.run.total_env_steps
    seed = cfg.run.seed
    env = make_shaped_env(cfg, seed=seed)
    eval_env = make_shaped_env(cfg, seed=seed + 1000, training=False)
    log = RunLog(run_dir)
    progress = ProgressLine(total, "train ppo in-process", enabled=not quiet)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **ppo_kwargs(cfg))
    every = cfg.actor.eval_every_episodes
    state = {"episode_id": 0, "train_since_eval": 0, "shaped": 0.0, "raw": 0.0, "length": 0, "last_eval": float("nan"),
             "eval_seed": seed + 10_000}

    def evaluate(env_steps: int) -> float:
        shaped, raw, length = _run_episode(model, eval_env, state["eval_seed"])
        state["eval_seed"] += 1
        log.episode(EpisodeRecord(env_steps, state["episode_id"], shaped, raw, length, True, 0))
        state["episode_id"] += 1
        state["last_eval"] = shaped
        return shaped

    class Logger(BaseCallback):
        def _on_step(self) -> bool:
            reward = float(self.locals["rewards"][0])
            info = self.locals["infos"][0]
            state["shaped"] += reward
            state["raw"] += float(info.get("raw_reward", 0.0))
            state["length"] += 1
            steps = self.num_timesteps
            if self.locals["dones"][0]:
                log.episode(EpisodeRecord(steps, state["episode_id"], state["shaped"], state["raw"], state["length"], False, 0))
                state["episode_id"] += 1
                state["shaped"] = state["raw"] = 0.0
                state["length"] = 0
                state["train_since_eval"] += 1
                if every > 0 and state["train_since_eval"] >= max(every - 1, 1):
                    state["train_since_eval"] = 0
                    evaluate(steps)
            progress.update(min(steps, total), f"eval return {state['last_eval']:.2f}", force=steps >= total)
            return steps < total  # stop exactly at the step budget, as the SAC actor does

    model.learn(total_timesteps=total + cfg.algo.ppo_n_steps, callback=Logger(), progress_bar=False)
    final = [evaluate(min(model.num_timesteps, total)) for _ in range(cfg.actor.final_eval_episodes)]
    log.close()
    env.close()
    eval_env.close()
    return {"env_steps": int(model.num_timesteps), "final_eval_returns": final}
