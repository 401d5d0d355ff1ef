"""Environments behind one interface: a gymnasium env with a flat float32 Box observation, a Box
action in [-1, 1]^N, `reward_term_names`, and `info["reward_terms"]` from reset() and step()."""
from __future__ import annotations

import gymnasium as gym

from kuavo_rl.config import EnvConfig


def make_env(cfg: EnvConfig, seed: int | None = None) -> gym.Env:
    if cfg.name == "toy":
        from kuavo_rl.envs.toy import TargetActionEnv
        return TargetActionEnv(cfg.action_dim, cfg.target, cfg.obs_mode, cfg.episode_steps, seed=seed)
    if cfg.name == "pick_lift":
        from kuavo_rl.envs.pick_lift import PickLiftEnv
        return PickLiftEnv(seed=seed, max_episode_steps=cfg.episode_steps)
    raise ValueError(f"unknown env {cfg.name!r}")
