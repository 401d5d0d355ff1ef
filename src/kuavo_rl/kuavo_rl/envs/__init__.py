"""Environments behind one interface: a gymnasium env with a flat float32 Box observation, a Box
action in [-1, 1]^N, `reward_term_names`, and `info["reward_terms"]` from reset() and step()."""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from kuavo_rl.envs.registry import ENVS, EnvEntry

if TYPE_CHECKING:  # the config schema reads the env table, so this module must not import it at run time
    import gymnasium as gym

    from kuavo_rl.config import EnvConfig

__all__ = ["ENVS", "EnvEntry", "EnvSpec", "env_spec", "make_env", "observation_bounds"]


class EnvSpec(NamedTuple):
    observation_dim: int
    action_dim: int
    reward_term_names: tuple[str, ...]


def make_env(cfg: EnvConfig, seed: int | None = None) -> gym.Env:
    if cfg.name == "toy":
        from kuavo_rl.envs.toy import TargetActionEnv
        return TargetActionEnv(cfg.action_dim, cfg.target, cfg.obs_mode, cfg.episode_steps, seed=seed)
    if cfg.name == "pick_lift":
        from kuavo_rl.envs.pick_lift import PickLiftEnv
        return PickLiftEnv(seed=seed, max_episode_steps=cfg.episode_steps)
    raise ValueError(f"unknown env {cfg.name!r} (known: {', '.join(ENVS)})")


def env_spec(cfg: EnvConfig) -> EnvSpec:
    """The configured env's dimensions and reward terms, read from the env classes without building
    a simulator (actor and learner need only these three)."""
    if cfg.name == "toy":
        from kuavo_rl.envs.toy import TargetActionEnv
        return EnvSpec(cfg.action_dim + 1, cfg.action_dim, TargetActionEnv.reward_term_names)
    if cfg.name == "pick_lift":
        from kuavo_rl.envs.pick_lift import PickLiftEnv
        return EnvSpec(PickLiftEnv.OBSERVATION_DIM, PickLiftEnv.ACTION_DIM, PickLiftEnv.reward_term_names)
    raise ValueError(f"unknown env {cfg.name!r} (known: {', '.join(ENVS)})")


def observation_bounds(cfg: EnvConfig):
    """The env's finite observation bounds (low, high), or None when it has none (the simulator)."""
    if cfg.name == "toy":
        import numpy as np
        dim = env_spec(cfg).observation_dim
        return -np.ones(dim, np.float32), np.ones(dim, np.float32)
    return None
