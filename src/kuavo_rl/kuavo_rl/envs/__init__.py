"""Environments behind one interface: a gymnasium env with a flat float32 Box observation, a Box
action in [-1, 1]^N, `reward_term_names`, and `info["reward_terms"]` from reset() and step()."""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from kuavo_rl.envs.registry import ENVS, EnvEntry

if TYPE_CHECKING:  # the config schema reads the env table, so this module must not import it at run time
    import gymnasium as gym

    from kuavo_rl.config import EnvConfig

__all__ = ["ENVS", "KUAVO_ENVS", "EnvEntry", "EnvSpec", "env_spec", "make_env", "make_kuavo_env", "inprocess_variant", "observation_bounds",
           "observation_names", "action_names"]


KUAVO_ENVS = ("kuavo", "kuavo_sim")


class EnvSpec(NamedTuple):
    observation_dim: int
    action_dim: int
    reward_term_names: tuple[str, ...]


def make_env(cfg: EnvConfig, seed: int | None = None, log=lambda message: None, robot_link=None) -> gym.Env:
    """The configured env; a Kuavo env takes `log` for its warnings and, over ROS 2, `robot_link`."""
    if cfg.name == "toy":
        from kuavo_rl.envs.toy import TargetActionEnv
        return TargetActionEnv(cfg.action_dim, cfg.target, cfg.obs_mode, cfg.episode_steps, seed=seed)
    if cfg.name == "pick_lift":
        from kuavo_rl.envs.pick_lift import PickLiftEnv
        return PickLiftEnv(seed=seed, max_episode_steps=cfg.episode_steps)
    if cfg.name in KUAVO_ENVS:
        return make_kuavo_env(cfg, seed, log, robot_link)
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
    if cfg.name in KUAVO_ENVS:
        from kuavo_rl.kuavo.bridge import action_dim_of
        from kuavo_rl.kuavo.settings import layout_size
        from kuavo_rl.kuavo.task import REWARD_TERM_NAMES
        return EnvSpec(layout_size(cfg.kuavo.observation_layout), action_dim_of(cfg.kuavo), REWARD_TERM_NAMES)
    raise ValueError(f"unknown env {cfg.name!r} (known: {', '.join(ENVS)})")


def make_kuavo_env(cfg: EnvConfig, seed: int | None = None, log=lambda message: None, robot_link=None) -> gym.Env:
    """The Kuavo bridge over the configured link: the simulated Kuavo in this process, or Leju's
    topics over DDS (`robot_link`: the env node's Ros2Link to the kuavo_sim node or a robot)."""
    from kuavo_rl.kuavo.bridge import KuavoBridgeEnv
    if cfg.kuavo.link == "inprocess":
        from kuavo_rl.kuavo.link import SimLink
        robot_link = SimLink(cfg.kuavo, cfg.kuavo_sim, seed=seed)
    elif robot_link is None:
        raise ValueError("env.kuavo.link ros2 reaches the robot through the env node; in-process runs "
                         "(--inprocess, diagnostics) need env.kuavo.link: inprocess")
    return KuavoBridgeEnv(cfg.kuavo, robot_link, episode_steps=cfg.episode_steps, seed=seed, log=log)


def inprocess_variant(cfg: EnvConfig) -> EnvConfig:
    """The env as this process can build it without ROS: the Kuavo envs on the in-process simulator."""
    if cfg.name not in KUAVO_ENVS or cfg.kuavo.link == "inprocess":
        return cfg
    import copy
    variant = copy.deepcopy(cfg)
    variant.kuavo.link = "inprocess"
    return variant


def observation_names(cfg: EnvConfig) -> list[str]:
    """A name per observation index (the learner logs them; datasets carry them)."""
    if cfg.name in KUAVO_ENVS:
        from kuavo_rl.kuavo import model
        from kuavo_rl.kuavo.task import observation_names as kuavo_names
        return kuavo_names(cfg.kuavo.observation_layout, tuple(model.ARM_JOINT_NAMES))
    return [f"observation.{i}" for i in range(env_spec(cfg).observation_dim)]


def action_names(cfg: EnvConfig) -> list[str]:
    """A name per action index (datasets carry them; a dataset recorded for another action is refused)."""
    if cfg.name in KUAVO_ENVS:
        if cfg.kuavo.action_mode == "ee_delta":
            return [f"{hand}_d{axis}" for hand in ("left", "right") for axis in "xyz"]
        from kuavo_rl.kuavo import model
        return list(model.ARM_JOINT_NAMES)
    if cfg.name == "pick_lift":
        return ["dx", "dy", "dz", "gripper"]
    return [f"action.{i}" for i in range(env_spec(cfg).action_dim)]


def observation_bounds(cfg: EnvConfig):
    """The env's finite observation bounds (low, high), or None when it has none (the simulator)."""
    if cfg.name == "toy":
        import numpy as np
        dim = env_spec(cfg).observation_dim
        return -np.ones(dim, np.float32), np.ones(dim, np.float32)
    return None
