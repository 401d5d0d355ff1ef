"""Conversions between the pure core's numpy data and kuavo_msgs messages, with validation.

Typed arrays cross as `array.array` built from raw bytes (no per-element Python loop), so a
10,000-transition batch converts in milliseconds.
"""
from __future__ import annotations

import array
import dataclasses

import numpy as np

from kuavo_rl.protocol import (LABEL_NAMES, Acks, ActionDecision, ActorStatusInfo, BatchError, EpisodeLabelInput,
                               InterventionInput, StepBatch, StepObservation)

TYPECODES = {np.float32: "f", np.uint64: "Q", np.uint32: "I", np.uint8: "B"}


def to_array(values, dtype) -> array.array:
    return array.array(TYPECODES[dtype], np.ascontiguousarray(values, dtype=dtype).tobytes())


def from_array(values, dtype) -> np.ndarray:
    return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype)


# ---- env protocol ----------------------------------------------------------------------------
def observation_to_msg(msg, obs: StepObservation, reward_term_names, stamp=None):
    if stamp is not None:
        msg.stamp = stamp
    msg.episode_id, msg.step_index = int(obs.episode_id), int(obs.step_index)
    msg.observation = to_array(obs.observation, np.float32)
    msg.reward_term_names = list(reward_term_names)
    msg.reward_terms = to_array(obs.reward_terms, np.float32)
    msg.raw_reward = float(obs.raw_reward)
    msg.terminated, msg.truncated = bool(obs.terminated), bool(obs.truncated)
    return msg


def observation_from_msg(msg, observation_dim: int | None = None,
                         reward_term_names: tuple[str, ...] | None = None) -> StepObservation:
    """Rebuild a StepObservation, checking it against the expected sizes and reward terms."""
    observation = from_array(msg.observation, np.float32).copy()
    terms = from_array(msg.reward_terms, np.float32).copy()
    if len(terms) != len(msg.reward_term_names):
        raise ValueError(f"observation has {len(terms)} reward terms but {len(msg.reward_term_names)} names")
    if observation_dim is not None and observation.shape != (observation_dim,):
        raise ValueError(f"observation has {observation.size} values, expected {observation_dim}")
    if reward_term_names is not None and tuple(msg.reward_term_names) != tuple(reward_term_names):
        raise ValueError(f"observation has reward terms {list(msg.reward_term_names)}, expected {list(reward_term_names)}")
    if not (np.all(np.isfinite(observation)) and np.all(np.isfinite(terms)) and np.isfinite(msg.raw_reward)):
        raise ValueError("observation contains NaN/inf")
    return StepObservation(msg.episode_id, msg.step_index, observation, terms, msg.raw_reward,
                           msg.terminated, msg.truncated)


def action_to_msg(msg, decision: ActionDecision, stamp=None):
    if stamp is not None:
        msg.stamp = stamp
    msg.episode_id, msg.step_index = int(decision.episode_id), int(decision.step_index)
    msg.action = to_array(decision.action, np.float32)
    msg.intervention, msg.reset = bool(decision.intervention), bool(decision.reset)
    msg.label = int(decision.label)
    return msg


def action_from_msg(msg, action_dim: int) -> ActionDecision:
    action = from_array(msg.action, np.float32).copy()
    if not msg.reset:
        if action.shape != (action_dim,):
            raise ValueError(f"action has {len(action)} values, env expects {action_dim}")
        if not np.all(np.isfinite(action)):
            raise ValueError("action contains NaN/inf")
    if msg.label not in LABEL_NAMES:
        raise ValueError(f"action label {msg.label} is not one of {sorted(LABEL_NAMES)} (none, success, failure)")
    return ActionDecision(msg.episode_id, msg.step_index, action, msg.intervention, msg.reset, msg.label)


# ---- transitions -----------------------------------------------------------------------------
def batch_to_msg(msg, batch: StepBatch):
    msg.actor_id, msg.sequence, msg.count = batch.actor_id, int(batch.sequence), int(batch.count)
    msg.actor_incarnation = batch.actor_incarnation
    msg.observation_dim, msg.action_dim = int(batch.observation_dim), int(batch.action_dim)
    msg.reward_term_names = list(batch.reward_term_names)
    msg.transition_sequences = to_array(batch.transition_sequences, np.uint64)
    msg.episode_ids = to_array(batch.episode_ids, np.uint64)
    msg.step_indices = to_array(batch.step_indices, np.uint32)
    for name in ("observations", "actions", "next_observations", "reward_terms", "raw_rewards"):
        setattr(msg, name, to_array(getattr(batch, name), np.float32))
    for name in ("terminated", "truncated", "intervention", "evaluation"):
        setattr(msg, name, getattr(batch, name).tolist())
    msg.policy_version = to_array(batch.policy_version, np.uint64)
    return msg


def batch_from_msg(msg) -> StepBatch:
    """Rebuild a StepBatch; raises BatchError when array lengths do not match the header."""
    n, obs_dim, act_dim, n_terms = msg.count, msg.observation_dim, msg.action_dim, len(msg.reward_term_names)
    expected = {"transition_sequences": n, "episode_ids": n, "step_indices": n, "observations": n * obs_dim,
                "actions": n * act_dim, "next_observations": n * obs_dim, "reward_terms": n * n_terms,
                "raw_rewards": n, "terminated": n, "truncated": n, "intervention": n, "evaluation": n,
                "policy_version": n}
    for name, length in expected.items():
        if len(getattr(msg, name)) != length:
            raise BatchError(f"batch {msg.actor_id}#{msg.sequence}: field '{name}' has {len(getattr(msg, name))} "
                             f"values, expected {length} (count={n})")
    f32 = lambda name, cols: from_array(getattr(msg, name), np.float32).reshape(n, cols)  # noqa: E731
    return StepBatch(
        actor_id=msg.actor_id, sequence=msg.sequence, observation_dim=obs_dim, action_dim=act_dim,
        reward_term_names=tuple(msg.reward_term_names),
        transition_sequences=from_array(msg.transition_sequences, np.uint64),
        episode_ids=from_array(msg.episode_ids, np.uint64),
        step_indices=from_array(msg.step_indices, np.uint32),
        observations=f32("observations", obs_dim), actions=f32("actions", act_dim),
        next_observations=f32("next_observations", obs_dim), reward_terms=f32("reward_terms", n_terms),
        raw_rewards=from_array(msg.raw_rewards, np.float32),
        terminated=np.array(msg.terminated, bool), truncated=np.array(msg.truncated, bool),
        intervention=np.array(msg.intervention, bool), evaluation=np.array(msg.evaluation, bool),
        policy_version=from_array(msg.policy_version, np.uint64), actor_incarnation=msg.actor_incarnation,
    )


def acks_to_msg(msg, acks: Acks, learner_run_id: str):
    msg.actor_id, msg.learner_run_id = acks.actor_id, learner_run_id
    msg.actor_incarnation, msg.earlier_env_steps = acks.incarnation, int(acks.earlier_env_steps)
    msg.received, msg.persisted, msg.rejected = list(acks.received), list(acks.persisted), list(acks.rejected)
    msg.rejected_reasons = list(acks.rejected_reasons)
    return msg


def acks_from_msg(msg) -> Acks:
    return Acks(msg.actor_id, msg.actor_incarnation, int(msg.earlier_env_steps), list(msg.received),
                list(msg.persisted), list(msg.rejected), list(msg.rejected_reasons))


# ---- operator ----------------------------------------------------------------------------------
def intervention_from_msg(msg, received_at: float, authenticated: bool = True) -> InterventionInput:
    return InterventionInput(bool(msg.active), from_array(msg.action, np.float32).copy(), received_at,
                             bool(msg.estop), bool(msg.estop_reset), authenticated)


def label_to_msg(msg, label: EpisodeLabelInput, stamp=None):
    if stamp is not None:
        msg.stamp = stamp
    msg.label, msg.label_id, msg.source = int(label.label), int(label.label_id), str(label.source)
    return msg


def label_from_msg(msg, authenticated: bool = True) -> EpisodeLabelInput:
    return EpisodeLabelInput(int(msg.label), int(msg.label_id), str(msg.source), authenticated)


# ---- link health -------------------------------------------------------------------------------
# message field -> ActorStatusInfo field: the same names, but for the incarnation (as in TransitionBatch)
ACTOR_STATUS_FIELDS = {("actor_incarnation" if f.name == "incarnation" else f.name): f.name
                       for f in dataclasses.fields(ActorStatusInfo)}


def actor_status_to_msg(msg, status: ActorStatusInfo, stamp=None):
    if stamp is not None:
        msg.stamp = stamp
    for msg_field, name in ACTOR_STATUS_FIELDS.items():
        setattr(msg, msg_field, getattr(status, name))
    return msg


def actor_status_from_msg(msg) -> ActorStatusInfo:
    status = ActorStatusInfo(**{name: getattr(msg, msg_field) for msg_field, name in ACTOR_STATUS_FIELDS.items()})
    if not status.actor_id.strip():
        raise ValueError("actor status without an actor_id")
    return status
