"""Replay buffers: an online and an offline (intervention) buffer sampled RLPD-style.

Each transition stores its next observation and its own terminated flag, so that a time-limit
truncation bootstraps and a termination does not (lerobot 0.4's buffer bootstraps truncations from
the next episode's first state; docs/background.md).
"""
from __future__ import annotations

from dataclasses import fields

import numpy as np

from kuavo_rl.protocol import TransitionArrays


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, n_reward_terms: int):
        self.capacity, self.obs_dim, self.act_dim = int(capacity), int(obs_dim), int(act_dim)
        self.data = TransitionArrays(
            observations=np.zeros((capacity, obs_dim), np.float32),
            actions=np.zeros((capacity, act_dim), np.float32),
            reward_terms=np.zeros((capacity, n_reward_terms), np.float32),
            raw_rewards=np.zeros(capacity, np.float32),
            next_observations=np.zeros((capacity, obs_dim), np.float32),
            terminated=np.zeros(capacity, bool),
            intervention=np.zeros(capacity, bool),
            sequences=np.zeros(capacity, np.uint64),
        )
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: TransitionArrays) -> None:
        n = len(batch)
        if n > self.capacity:
            batch, n = batch.select(slice(n - self.capacity, n)), self.capacity
        index = (self.cursor + np.arange(n)) % self.capacity
        for f in fields(TransitionArrays):
            getattr(self.data, f.name)[index] = getattr(batch, f.name)
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> TransitionArrays:
        return self.data.select(rng.integers(0, self.size, size=n))

    def contents(self) -> TransitionArrays:
        """The stored transitions, oldest first."""
        if self.size < self.capacity:
            return self.data.select(slice(0, self.size))
        order = (self.cursor + np.arange(self.capacity)) % self.capacity
        return self.data.select(order)

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "size": self.size, "cursor": self.cursor,
                **{f.name: getattr(self.data, f.name)[: self.size].copy() for f in fields(TransitionArrays)}}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"checkpoint buffer capacity {state['capacity']} != configured {self.capacity}")
        self.size, self.cursor = int(state["size"]), int(state["cursor"])
        for f in fields(TransitionArrays):
            getattr(self.data, f.name)[: self.size] = state[f.name]


class RLPDBuffers:
    """Every transition goes online; intervention transitions also go offline. Once the offline
    buffer has data, a batch is `offline_ratio` offline and the rest online."""

    def __init__(self, online_capacity: int, offline_capacity: int, obs_dim: int, act_dim: int,
                 n_reward_terms: int, offline_ratio: float = 0.5):
        self.online = ReplayBuffer(online_capacity, obs_dim, act_dim, n_reward_terms)
        self.offline = ReplayBuffer(offline_capacity, obs_dim, act_dim, n_reward_terms)
        self.offline_ratio = offline_ratio

    def add(self, batch: TransitionArrays) -> None:
        self.online.add(batch)
        if batch.intervention.any():
            self.offline.add(batch.select(batch.intervention))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[TransitionArrays, int]:
        """`n` transitions, the first from the online buffer, the last `n_offline` from the offline one."""
        n_offline = int(round(n * self.offline_ratio)) if len(self.offline) > 0 else 0
        parts = [self.online.sample(n - n_offline, rng)]
        if n_offline:
            parts.append(self.offline.sample(n_offline, rng))
        return TransitionArrays.concatenate(parts), n_offline

    def state_dict(self) -> dict:
        return {"online": self.online.state_dict(), "offline": self.offline.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.offline.load_state_dict(state["offline"])
