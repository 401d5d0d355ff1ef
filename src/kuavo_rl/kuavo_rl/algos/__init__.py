"""Learning backends: `make_backend` (learner side, updates) and `make_actor_policy` (actor side,
acts from published weights) for the configured `algo.backend`. The interfaces are in base.py."""
from __future__ import annotations

import numpy as np
import torch

from kuavo_rl.algos.normalization import NO_CLIP, NormalizedActorPolicy, NormalizedBackend, ObservationNormalizer
from kuavo_rl.config import AlgoConfig


def _normalizer(cfg: AlgoConfig, obs_dim: int, bounds: tuple[np.ndarray, np.ndarray] | None) -> ObservationNormalizer:
    normalizer = ObservationNormalizer(obs_dim, cfg.observation_clip if cfg.observation_normalization != "none"
                                       else NO_CLIP)
    if cfg.observation_normalization == "bounds":
        if bounds is None:
            raise ValueError("algo.observation_normalization: bounds needs an env with finite observation bounds")
        normalizer.set_bounds(*bounds)
    return normalizer


def make_backend(cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int,
                 observation_bounds: tuple[np.ndarray, np.ndarray] | None = None) -> NormalizedBackend:
    torch.manual_seed(seed)
    if cfg.backend == "lerobot_sac":
        from kuavo_rl.algos.lerobot_sac import LerobotSACBackend
        inner = LerobotSACBackend(cfg, obs_dim, act_dim)
    elif cfg.backend == "sb3_sac":
        from kuavo_rl.algos.sb3_sac import SB3SACBackend
        inner = SB3SACBackend(cfg, obs_dim, act_dim, seed)
    else:
        raise ValueError(f"backend {cfg.backend!r} has no learner-side update (sb3_ppo runs only in-process)")
    return NormalizedBackend(inner, _normalizer(cfg, obs_dim, observation_bounds))


def make_actor_policy(cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int) -> NormalizedActorPolicy:
    """The actor's normaliser is the identity until the first weights bring the learner's."""
    torch.manual_seed(seed)
    if cfg.backend == "lerobot_sac":
        from kuavo_rl.algos.lerobot_sac import LerobotSACActor
        inner = LerobotSACActor(cfg, obs_dim, act_dim)
    elif cfg.backend == "sb3_sac":
        from kuavo_rl.algos.sb3_sac import SB3SACActor
        inner = SB3SACActor(cfg, obs_dim, act_dim, seed)
    else:
        raise ValueError(f"backend {cfg.backend!r} has no actor policy")
    return NormalizedActorPolicy(inner, ObservationNormalizer(obs_dim))
