"""The algorithm/policy split: a learner-side Backend (updates) and an actor-side ActorPolicy
(acts on CPU from published weights)."""
from __future__ import annotations

import hashlib
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from kuavo_rl.config import ConfigError
from kuavo_rl.protocol import TransitionArrays

if TYPE_CHECKING:
    from kuavo_rl.config import AlgoConfig

WEIGHTS_FORMAT = "torch.save/state_dict"


@dataclass
class TrainBatch:
    observations: torch.Tensor  # (B, obs_dim)
    actions: torch.Tensor  # (B, act_dim)
    rewards: torch.Tensor  # (B,)
    next_observations: torch.Tensor  # (B, obs_dim)
    terminated: torch.Tensor  # (B,) float: 1 stops bootstrapping; truncation is 0
    offline: torch.Tensor | None = None  # (B,) bool: drawn from the offline (demonstrations, takeovers) buffer
    bc_weight: float = 0.0  # weight of the behaviour-cloning term on the offline rows in the actor loss

    @staticmethod
    def from_arrays(t: TransitionArrays, rewards: np.ndarray, offline: np.ndarray | None = None,
                    bc_weight: float = 0.0) -> "TrainBatch":
        """`t` with its `rewards` (B,), shaped from its reward terms by the learner."""
        return TrainBatch(torch.from_numpy(t.observations), torch.from_numpy(t.actions),
                          torch.from_numpy(rewards), torch.from_numpy(t.next_observations),
                          torch.from_numpy(t.terminated.astype(np.float32)),
                          None if offline is None else torch.from_numpy(offline), bc_weight)

    def to(self, device: torch.device) -> "TrainBatch":
        """The batch on `device`; from host memory to a GPU through pinned memory, without blocking."""
        if self.observations.device == device:
            return self

        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            if tensor is None:
                return None
            if device.type == "cuda" and tensor.device.type == "cpu":
                tensor = tensor.pin_memory()
            return tensor.to(device, non_blocking=True)

        return TrainBatch(move(self.observations), move(self.actions), move(self.rewards),
                          move(self.next_observations), move(self.terminated), move(self.offline), self.bc_weight)

    def offline_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(observations, actions) of the offline rows only: behaviour cloning never pairs an online
        observation with an offline action."""
        if self.offline is None:
            return self.observations[:0], self.actions[:0]
        return self.observations[self.offline], self.actions[self.offline]


class Backend(ABC):
    """Learner side of an off-policy algorithm: one `update` is one critic, actor and temperature step."""

    name: str
    target_entropy: float
    target_entropy_rule: str

    @abstractmethod
    def update(self, batch: TrainBatch) -> dict[str, float]:
        """One gradient update; returns metrics (critic_loss, actor_loss, temperature, ...)."""

    def behaviour_cloning_update(self, observations: torch.Tensor, actions: torch.Tensor) -> float:
        """One actor step towards the demonstrated `actions` (B, act_dim); returns the BC loss."""
        raise NotImplementedError(f"backend {self.name} has no behaviour-cloning update")

    def critic_update(self, batch: TrainBatch) -> float:
        """One critic step (and target update) alone; returns the critic loss."""
        raise NotImplementedError(f"backend {self.name} cannot train its critics alone")

    @abstractmethod
    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        """What the actor needs to act."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything needed to resume: networks, targets, temperature, optimizers."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...


class ActorPolicy(ABC):
    backend_name: str

    @property
    @abstractmethod
    def actor_module(self) -> torch.nn.Module:
        """The network the published weights are loaded into."""

    def load_actor_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """All or nothing: every tensor is checked (name, shape, finite) before any is copied in."""
        check_state_matches(self.actor_module.state_dict(), state)
        self.actor_module.load_state_dict(state)

    @abstractmethod
    def act(self, observation: np.ndarray, deterministic: bool) -> np.ndarray:
        """(obs_dim,) -> (act_dim,) in [-1, 1]."""


def resolve_device(name: str) -> torch.device:
    """learner.device -> a torch device this machine has; a ConfigError naming what is missing otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"learner.device {name}: torch sees no CUDA device here (torch {torch.__version__}, "
                             f"CUDA build {torch.version.cuda or 'none'}); use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"learner.device {name}: there are {torch.cuda.device_count()} CUDA device(s) "
                             f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def updates_owed(algo: AlgoConfig, env_steps: int) -> int:
    """Gradient updates owed after `env_steps` training steps at the configured update-to-data ratio,
    counted from learning_starts (the learner's schedule; the actor paces itself by it)."""
    if env_steps < max(algo.learning_starts, 1):
        return 0
    return algo.utd_ratio * (env_steps - algo.learning_starts + 1)


def bc_weight_at(algo: AlgoConfig, updates: int) -> float:
    """The behaviour-cloning weight after `updates` updates: linear from bc_weight_start to bc_weight_end
    over bc_decay_updates, then constant."""
    progress = min(updates / algo.bc_decay_updates, 1.0)
    return algo.bc_weight_start + (algo.bc_weight_end - algo.bc_weight_start) * progress


def check_state_matches(expected: dict[str, torch.Tensor], state: dict) -> None:
    """Raise ValueError unless `state` has exactly `expected`'s tensors, with their shapes, all finite."""
    if not isinstance(state, dict):
        raise ValueError(f"weights are a {type(state).__name__}, not a state dict")
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"weights do not fit this policy: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, reference in expected.items():
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor) or tensor.shape != reference.shape:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"weights tensor '{name}' has shape {shape}, the policy needs {tuple(reference.shape)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"weights tensor '{name}' contains NaN/inf")


def parameters_finite(state: dict) -> str | None:
    """The name of the first tensor with a NaN/inf in a (nested) state dict, or None."""
    for name, value in state.items():
        if isinstance(value, dict):
            bad = parameters_finite(value)
            if bad is not None:
                return f"{name}.{bad}"
        elif isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return str(name)
    return None


def encode_weights(state: dict[str, torch.Tensor]) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def decode_weights(data: bytes, checksum: str) -> dict[str, torch.Tensor]:
    actual = hashlib.sha256(data).hexdigest()
    if actual != checksum:
        raise ValueError(f"weights checksum mismatch (got {actual[:12]}, expected {checksum[:12]})")
    return torch.load(io.BytesIO(data), weights_only=True)
