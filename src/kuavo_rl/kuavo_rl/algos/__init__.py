"""Learning backends: `make_backend` (learner side, updates) and `make_actor_policy` (actor side,
acts from published weights) for the configured `algo.backend`. The interfaces are in base.py."""
from __future__ import annotations

import torch

from kuavo_rl.algos.base import ActorPolicy, Backend
from kuavo_rl.config import AlgoConfig


def make_backend(cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int) -> Backend:
    torch.manual_seed(seed)
    if cfg.backend == "lerobot_sac":
        from kuavo_rl.algos.lerobot_sac import LerobotSACBackend
        return LerobotSACBackend(cfg, obs_dim, act_dim)
    if cfg.backend == "sb3_sac":
        from kuavo_rl.algos.sb3_sac import SB3SACBackend
        return SB3SACBackend(cfg, obs_dim, act_dim, seed)
    raise ValueError(f"backend {cfg.backend!r} has no learner-side update (sb3_ppo runs only in-process)")


def make_actor_policy(cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int) -> ActorPolicy:
    torch.manual_seed(seed)
    if cfg.backend == "lerobot_sac":
        from kuavo_rl.algos.lerobot_sac import LerobotSACActor
        return LerobotSACActor(cfg, obs_dim, act_dim)
    if cfg.backend == "sb3_sac":
        from kuavo_rl.algos.sb3_sac import SB3SACActor
        return SB3SACActor(cfg, obs_dim, act_dim, seed)
    raise ValueError(f"backend {cfg.backend!r} has no actor policy")
