"""Replay buffers: an online and an offline (intervention) buffer sampled RLPD-style.

Each transition stores its next observation and its own terminated flag, so that a time-limit
truncation bootstraps and a termination does not (lerobot 0.4's buffer bootstraps truncations from
the next episode's first state; docs/background.md).
"""
from __future__ import annotations

import dataclasses
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

    def add(self, batch: TransitionArrays) -> np.ndarray:
        """Store the batch; returns the slot of each of its transitions (-1: dropped, the batch exceeded
        the capacity)."""
        n_given = n = len(batch)
        if n > self.capacity:
            batch, n = batch.select(slice(n - self.capacity, n)), self.capacity
        index = (self.cursor + np.arange(n)) % self.capacity
        for f in fields(TransitionArrays):
            getattr(self.data, f.name)[index] = getattr(batch, f.name)
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        return np.concatenate([np.full(n_given - n, -1), index])

    def set_next_observation(self, slot: int, sequence: int, observation: np.ndarray) -> None:
        """Replace a stored transition's next observation, unless its slot now holds another transition."""
        if 0 <= slot < self.size and self.data.sequences[slot] == sequence:
            self.data.next_observations[slot] = observation

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

    def add(self, batch: TransitionArrays) -> tuple[np.ndarray, np.ndarray]:
        """-> (online slot per transition, offline slot per transition: -1 for those not stored offline)."""
        online = self.online.add(batch)
        offline = np.full(len(batch), -1)
        if batch.intervention.any():
            offline[batch.intervention] = self.offline.add(batch.select(batch.intervention))
        return online, offline

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


def link_episode_ends(observations: np.ndarray, next_observations: np.ndarray,
                      episode_ends: np.ndarray) -> np.ndarray:
    """Next observations as lerobot 0.4's memory-optimised buffer has them: the next observation of a
    transition is the following transition's observation, so an episode's last transition gets the next
    episode's first. (B, obs) -> (B, obs); the last row keeps its own (its successor is not here yet)."""
    linked = next_observations.copy()
    ends = np.flatnonzero(episode_ends[:-1])
    linked[ends] = observations[ends + 1]
    return linked


class CrossEpisodeBootstrap:
    """quirks.bootstrap_across_episodes: rewrites each stored episode end's next observation to the first
    observation of the same sender's next episode, which may only arrive with the sender's next batch."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[int, int, int]] = {}  # sender -> (online slot, offline slot, sequence)

    def before_add(self, sender: str, batch: TransitionArrays, episode_ends: np.ndarray,
                   buffers: RLPDBuffers) -> TransitionArrays:
        """Link the episode ends inside `batch` (episode_ends: (B,) bool, terminated or truncated), and the
        sender's previous batch's last episode end to this batch's first observation."""
        if len(batch) == 0:
            return batch
        if sender in self.pending:
            online_slot, offline_slot, sequence = self.pending.pop(sender)
            buffers.online.set_next_observation(online_slot, sequence, batch.observations[0])
            buffers.offline.set_next_observation(offline_slot, sequence, batch.observations[0])
        return dataclasses.replace(batch, next_observations=link_episode_ends(
            batch.observations, batch.next_observations, episode_ends))

    def after_add(self, sender: str, batch: TransitionArrays, episode_ends: np.ndarray,
                  slots: tuple[np.ndarray, np.ndarray]) -> None:
        if len(batch) and episode_ends[-1]:
            self.pending[sender] = (int(slots[0][-1]), int(slots[1][-1]), int(batch.sequences[-1]))
