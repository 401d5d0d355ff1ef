"""Observation normalisation, shared by learner and actor: (obs - mean) / std, clipped.

The normaliser is a module with buffers, so it travels inside the published weights and the
checkpoint: the actor applies exactly the transform the learner trained with. Modes
(`algo.observation_normalization`):
- `statistics`: mean and std, `min_max`: min and max mapped to [-1, 1], of the demonstrations at
  start-up, or without demonstrations of the data in the buffers at the first update; then frozen
  (a moving input scale would chase the critic);
- `bounds`: the env's finite observation bounds mapped to [-1, 1];
- `none`: the identity.
Actions need no normaliser: every env takes actions in [-1, 1]^N (envs/__init__.py) and maps them
to physical units itself, so policy, takeovers and buffers share one action scale.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from kuavo_rl.algos.base import ActorPolicy, Backend, TrainBatch

MODES = ("statistics", "min_max", "bounds", "none")
FITTED_MODES = ("statistics", "min_max")  # fitted to data once, then frozen
MIN_STD = 1e-3  # below this a dimension is treated as (nearly) constant
NO_CLIP = float(np.finfo(np.float32).max)  # finite, so weights stay checkable for NaN/inf


class ObservationNormalizer(torch.nn.Module):
    def __init__(self, obs_dim: int, clip: float = NO_CLIP):
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))
        self.register_buffer("clip", torch.tensor(float(clip)))
        self.register_buffer("fitted", torch.tensor(False))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return ((observations - self.mean) / self.std).clamp(-self.clip, self.clip)

    def set_bounds(self, low: np.ndarray, high: np.ndarray) -> None:
        self._set((high + low) / 2.0, (high - low) / 2.0)

    def fit(self, observations: np.ndarray) -> None:
        """Freeze mean and std from (N, obs_dim) observations; a constant dimension keeps scale 1."""
        std = observations.std(axis=0)
        self._set(observations.mean(axis=0), np.where(std < 1e-8, 1.0, np.maximum(std, MIN_STD)))

    def fit_min_max(self, observations: np.ndarray) -> None:
        """Freeze min/max of (N, obs_dim) observations to [-1, 1]; a constant dimension keeps scale 1."""
        low, high = observations.min(axis=0), observations.max(axis=0)
        half_range = (high - low) / 2.0
        self._set((high + low) / 2.0, np.where(half_range < 1e-8, 1.0, np.maximum(half_range, MIN_STD)))

    def fit_to(self, mode: str, observations: np.ndarray) -> None:
        """Fit with the rule of `mode` (one of FITTED_MODES)."""
        if len(observations) == 0:
            raise ValueError("no observations to fit the normaliser to")
        (self.fit if mode == "statistics" else self.fit_min_max)(observations)

    def _set(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))
        self.fitted.fill_(True)


class NormalizedBackend(Backend):
    """A backend that trains on normalised observations; the normaliser is part of its weights."""

    def __init__(self, inner: Backend, normalizer: ObservationNormalizer, device: torch.device = torch.device("cpu")):
        self.inner, self.normalizer, self.device = inner, normalizer.to(device), device
        self.name = inner.name
        self.target_entropy, self.target_entropy_rule = inner.target_entropy, inner.target_entropy_rule

    def update(self, batch: TrainBatch) -> dict[str, float]:
        batch = batch.to(self.device)
        with torch.no_grad():
            normalized = replace(batch, observations=self.normalizer(batch.observations),
                                 next_observations=self.normalizer(batch.next_observations))
        return self.inner.update(normalized)

    def critic_update(self, batch: TrainBatch) -> float:
        batch = batch.to(self.device)
        with torch.no_grad():
            normalized = replace(batch, observations=self.normalizer(batch.observations),
                                 next_observations=self.normalizer(batch.next_observations))
        return self.inner.critic_update(normalized)

    def behaviour_cloning_update(self, observations: torch.Tensor, actions: torch.Tensor) -> float:
        observations, actions = observations.to(self.device), actions.to(self.device)
        with torch.no_grad():
            normalized = self.normalizer(observations)
        return self.inner.behaviour_cloning_update(normalized, actions)

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        """CPU copies (the actor acts on the CPU)."""
        return {**{f"policy.{k}": v.detach().cpu() for k, v in self.inner.actor_state_dict().items()},
                **{f"observation_normalizer.{k}": v.cpu() for k, v in self.normalizer.state_dict().items()}}

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "observation_normalizer": self.normalizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.normalizer.load_state_dict(state["observation_normalizer"])


class NormalizedActorPolicy(ActorPolicy):
    """An actor policy that normalises observations with the normaliser published with the weights."""

    def __init__(self, inner: ActorPolicy, normalizer: ObservationNormalizer):
        self.inner, self.normalizer = inner, normalizer
        self.backend_name = inner.backend_name
        self._module = torch.nn.ModuleDict({"policy": inner.actor_module, "observation_normalizer": normalizer})

    @property
    def actor_module(self) -> torch.nn.Module:
        return self._module

    @torch.no_grad()
    def act(self, observation: np.ndarray, deterministic: bool) -> np.ndarray:
        normalized = self.normalizer(torch.as_tensor(observation, dtype=torch.float32)).numpy()
        return self.inner.act(normalized, deterministic)
