"""The data every part of the stack exchanges, as plain numpy dataclasses (no ROS, no torch).

- The env-node protocol: the env publishes a `StepObservation` numbered (episode_id, step_index);
  the actor answers with an `ActionDecision` for exactly that step (or a reset); an operator's
  takeover arrives as an `InterventionInput`.
- The actor -> learner transition batch (`StepBatch`, the pure twin of kuavo_msgs/TransitionBatch),
  with the validation a learner applies before anything reaches its buffers.
- `TransitionArrays`: transitions as the replay buffers store and sample them.
- `Acks`: the learner's answer to an actor's batches (received, persisted, rejected).

codec.py converts these to and from kuavo_msgs messages; env, actor, learner and every new node
import this module, and it imports none of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


# ---- env-node protocol -------------------------------------------------------------------------
# Operator episode labels (kuavo_msgs/EpisodeLabel.LABEL_*; 0: no label).
LABEL_NONE, LABEL_SUCCESS, LABEL_FAILURE = 0, 1, 2
LABEL_NAMES = {LABEL_NONE: "none", LABEL_SUCCESS: "success", LABEL_FAILURE: "failure"}


@dataclass
class StepObservation:
    """One observation of the env-node protocol."""
    episode_id: int
    step_index: int
    observation: np.ndarray
    reward_terms: np.ndarray
    raw_reward: float
    terminated: bool
    truncated: bool


@dataclass
class ActionDecision:
    episode_id: int
    step_index: int
    action: np.ndarray
    intervention: bool = False
    reset: bool = False
    label: int = LABEL_NONE  # the operator's label: the env ends the episode as a success or failure


@dataclass
class InterventionInput:
    active: bool
    action: np.ndarray
    received_at: float  # monotonic seconds
    estop: bool = False
    estop_reset: bool = False  # the operator's explicit reset (only this clears a latched e-stop)
    authenticated: bool = True  # signed by a process of this run (an e-stop is obeyed either way)



@dataclass
class EpisodeLabelInput:
    """The operator's label for the current episode (kuavo_msgs/EpisodeLabel)."""
    label: int  # LABEL_SUCCESS | LABEL_FAILURE
    label_id: int  # repeated messages of one label share it
    source: str
    authenticated: bool = True

    def __post_init__(self):
        if self.label not in (LABEL_SUCCESS, LABEL_FAILURE):
            raise ValueError(f"episode label {self.label} is neither success ({LABEL_SUCCESS}) nor failure "
                             f"({LABEL_FAILURE})")


# ---- transitions -------------------------------------------------------------------------------
class BatchError(ValueError):
    """A transition batch that must be rejected (wrong dimensions, NaN, truncated arrays, ...)."""


@dataclass
class StepBatch:
    actor_id: str
    sequence: int  # the actor's batch sequence number
    observation_dim: int
    action_dim: int
    reward_term_names: tuple[str, ...]
    transition_sequences: np.ndarray  # (B,) uint64
    episode_ids: np.ndarray  # (B,) uint64
    step_indices: np.ndarray  # (B,) uint32
    observations: np.ndarray  # (B, obs_dim) float32
    actions: np.ndarray  # (B, act_dim) float32
    next_observations: np.ndarray  # (B, obs_dim) float32
    reward_terms: np.ndarray  # (B, T) float32
    raw_rewards: np.ndarray  # (B,) float32
    terminated: np.ndarray  # (B,) bool
    truncated: np.ndarray  # (B,) bool
    intervention: np.ndarray  # (B,) bool
    evaluation: np.ndarray  # (B,) bool
    policy_version: np.ndarray  # (B,) uint64
    actor_incarnation: str = ""  # the actor process; a restarted actor is a new sender

    ARRAY_FIELDS = ("transition_sequences", "episode_ids", "step_indices", "observations", "actions",
                    "next_observations", "reward_terms", "raw_rewards", "terminated", "truncated",
                    "intervention", "evaluation", "policy_version")

    @property
    def count(self) -> int:
        return len(self.transition_sequences)

    @property
    def sender(self) -> str:
        """Whose sequence numbers these are: one actor process."""
        return f"{self.actor_id}/{self.actor_incarnation}"

    def validate(self, observation_dim: int, action_dim: int, reward_term_names: tuple[str, ...],
                 max_transitions: int | None = None, max_abs_value: float | None = None) -> None:
        """Raise BatchError unless the batch matches what the learner expects."""
        if max_transitions is not None and self.count > max_transitions:
            raise BatchError(f"batch of {self.count} transitions exceeds learner.max_batch_transitions={max_transitions}")
        if self.observation_dim != observation_dim or self.action_dim != action_dim:
            raise BatchError(f"dimension mismatch: batch has observation_dim={self.observation_dim}, "
                             f"action_dim={self.action_dim}; learner expects {observation_dim}, {action_dim}")
        if tuple(self.reward_term_names) != tuple(reward_term_names):
            raise BatchError(f"reward terms {list(self.reward_term_names)} != expected {list(reward_term_names)}")
        n = self.count
        expected_shapes = {
            "observations": (n, observation_dim), "next_observations": (n, observation_dim),
            "actions": (n, action_dim), "reward_terms": (n, len(reward_term_names)),
        }
        for name in self.ARRAY_FIELDS:
            shape = getattr(self, name).shape
            if shape != expected_shapes.get(name, (n,)):
                raise BatchError(f"field '{name}' has shape {shape}, expected {expected_shapes.get(name, (n,))}")
        for name in ("observations", "actions", "next_observations", "reward_terms", "raw_rewards"):
            values = getattr(self, name)
            if not np.all(np.isfinite(values)):
                bad = int(np.count_nonzero(~np.isfinite(values)))
                raise BatchError(f"field '{name}' contains {bad} NaN/inf values")
            if max_abs_value is not None and values.size and float(np.max(np.abs(values))) > max_abs_value:
                raise BatchError(f"field '{name}' has a value of magnitude {float(np.max(np.abs(values))):.3g} "
                                 f"> learner.max_abs_value={max_abs_value:g}")
        if n and len(np.unique(self.transition_sequences)) != n:
            raise BatchError("duplicate transition sequence numbers inside one batch")

    def select(self, index) -> "StepBatch":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in self.ARRAY_FIELDS:
            values[name] = values[name][index]
        return StepBatch(**values)

    @staticmethod
    def from_rows(actor_id: str, sequence: int, observation_dim: int, action_dim: int,
                  reward_term_names: tuple[str, ...], rows: list[dict], actor_incarnation: str = "") -> "StepBatch":
        """Build a batch from per-transition dicts keyed like the array fields (singular values)."""
        def column(name, dtype, shape):
            return np.asarray([r[name] for r in rows], dtype=dtype).reshape(shape)

        n = len(rows)
        return StepBatch(
            actor_id, sequence, observation_dim, action_dim, tuple(reward_term_names),
            transition_sequences=column("transition_sequence", np.uint64, (n,)),
            episode_ids=column("episode_id", np.uint64, (n,)),
            step_indices=column("step_index", np.uint32, (n,)),
            observations=column("observation", np.float32, (n, observation_dim)),
            actions=column("action", np.float32, (n, action_dim)),
            next_observations=column("next_observation", np.float32, (n, observation_dim)),
            reward_terms=column("reward_terms", np.float32, (n, len(reward_term_names))),
            raw_rewards=column("raw_reward", np.float32, (n,)),
            terminated=column("terminated", bool, (n,)),
            truncated=column("truncated", bool, (n,)),
            intervention=column("intervention", bool, (n,)),
            evaluation=column("evaluation", bool, (n,)),
            policy_version=column("policy_version", np.uint64, (n,)),
            actor_incarnation=actor_incarnation,
        )


@dataclass
class TransitionArrays:
    """A batch of transitions as arrays with a leading dimension B."""
    observations: np.ndarray  # (B, obs_dim) float32
    actions: np.ndarray  # (B, act_dim) float32
    # The env's named reward terms and own reward, unshaped: the learner shapes them when it samples,
    # so a changed reward configuration applies to everything in the buffers.
    reward_terms: np.ndarray  # (B, T) float32
    raw_rewards: np.ndarray  # (B,) float32
    next_observations: np.ndarray  # (B, obs_dim) float32
    terminated: np.ndarray  # (B,) bool
    intervention: np.ndarray  # (B,) bool
    sequences: np.ndarray  # (B,) uint64, the actor's transition sequence numbers

    def __len__(self) -> int:
        return len(self.raw_rewards)

    def select(self, mask_or_index) -> "TransitionArrays":
        return TransitionArrays(**{f.name: getattr(self, f.name)[mask_or_index] for f in fields(self)})

    @staticmethod
    def concatenate(parts: list["TransitionArrays"]) -> "TransitionArrays":
        return TransitionArrays(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                                   for f in fields(TransitionArrays)})


@dataclass
class Acks:
    """What to tell one actor process about its batches (the pure twin of kuavo_msgs/BatchAck)."""
    actor_id: str
    incarnation: str = ""
    earlier_env_steps: int = 0  # training transitions held from earlier processes of this actor_id
    received: list[int] = field(default_factory=list)
    persisted: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    rejected_reasons: list[str] = field(default_factory=list)


# ---- link health -------------------------------------------------------------------------------
@dataclass
class ActorStatusInfo:
    """What an actor reports every actor.status_period_s (the pure twin of kuavo_msgs/ActorStatus);
    to the learner it is also this actor's heartbeat."""
    actor_id: str
    incarnation: str
    learner_run_id: str = ""  # the learner process last heard from ("" = none yet)
    env_steps: int = 0  # training steps of this actor_id over all its processes
    episodes: int = 0
    policy_version: int = 0
    unpersisted_batches: int = 0  # kept until the learner has persisted them
    unpersisted_transitions: int = 0
    waiting_for_learner: bool = False
    estopped: bool = False
    finished: bool = False  # all steps and final evaluations done, every batch received by the learner
    learner_link_lost: bool = False
    learner_silent_s: float = 0.0
    link_outages: int = 0  # learner-link outages that ended
    last_outage_s: float = 0.0
