"""Learning backends: `make_backend` (learner side, updates) and `make_actor_policy` (actor side,
acts from published weights) for the configured `algo.backend`. The interfaces are in base.py."""
from __future__ import annotations

import numpy as np
import torch

from kuavo_rl.algos.base import ActorPolicy, Backend
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


def _implementation(backend: str) -> tuple[type[Backend], type[ActorPolicy]]:
    """The learner-side and actor-side classes of `backend`; both are built as (cfg, obs_dim, act_dim, seed)."""
    if backend == "lerobot_sac":
        from kuavo_rl.algos.lerobot_sac import LerobotSACActor, LerobotSACBackend
        return LerobotSACBackend, LerobotSACActor
    if backend == "sb3_sac":
        from kuavo_rl.algos.sb3_sac import SB3SACActor, SB3SACBackend
        return SB3SACBackend, SB3SACActor
    raise ValueError(f"backend {backend!r} has no learner-side update or actor policy (sb3_ppo runs only in-process)")


def make_backend(cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int,
                 observation_bounds: tuple[np.ndarray, np.ndarray] | None = None,
                 device: torch.device = torch.device("cpu")) -> NormalizedBackend:
    """The learner side, its networks (and the observation normaliser) on `device`; initial weights drawn
    on the CPU from `seed` whatever the device, so a run starts from the same networks everywhere."""
    backend_class, _ = _implementation(cfg.backend)
    torch.manual_seed(seed)
    return NormalizedBackend(backend_class(cfg, obs_dim, act_dim, seed, device=device),
                             _normalizer(cfg, obs_dim, observation_bounds), device)


def make_actor_policy(cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int) -> NormalizedActorPolicy:
    """The actor's normaliser is the identity until the first weights bring the learner's."""
    _, policy_class = _implementation(cfg.backend)
    torch.manual_seed(seed)
    return NormalizedActorPolicy(policy_class(cfg, obs_dim, act_dim, seed), ObservationNormalizer(obs_dim))
