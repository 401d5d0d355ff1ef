"""The learner without ROS: ingest batches exactly once, shape rewards, sample RLPD-style, update,
export versioned weights, and save/restore everything needed to resume."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from kuavo_rl.algos import make_backend
from kuavo_rl.algos.base import (WEIGHTS_FORMAT, TrainBatch, bc_weight_at, encode_weights, parameters_finite,
                                 resolve_device, updates_owed)
from kuavo_rl.algos.normalization import FITTED_MODES
from kuavo_rl.buffer import CrossEpisodeBootstrap, RLPDBuffers
from kuavo_rl.config import ExperimentConfig
from kuavo_rl.datasets import DatasetError, Demonstrations, TrainingRecording, dataset_layout, load_demonstrations
from kuavo_rl.envs import observation_bounds
from kuavo_rl.protocol import BatchError, StepBatch, TransitionArrays
from kuavo_rl.reward import LiveRewardLint, RewardShaper, lint_config


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN/inf: training stops rather than checkpoint or publish it."""


class SequenceLedger:
    """Which batch sequence numbers of each sender (one actor process: actor_id/incarnation) are in
    the buffers (compact: a watermark below which all are present, plus the set above it)."""

    def __init__(self):
        self.below: dict[str, int] = {}
        self.above: dict[str, set[int]] = {}

    def contains(self, actor_id: str, sequence: int) -> bool:
        return sequence < self.below.get(actor_id, 0) or sequence in self.above.get(actor_id, set())

    def add(self, actor_id: str, sequence: int) -> None:
        above = self.above.setdefault(actor_id, set())
        above.add(sequence)
        below = self.below.get(actor_id, 0)
        while below in above:
            above.remove(below)
            below += 1
        self.below[actor_id] = below

    def state_dict(self) -> dict:
        return {"below": dict(self.below), "above": {k: sorted(v) for k, v in self.above.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.below = dict(state["below"])
        self.above = {k: set(v) for k, v in state["above"].items()}


@dataclass
class EpisodeRecord:
    env_steps: int  # training env steps ingested when the episode ended
    episode_id: int
    episode_return: float  # shaped
    raw_return: float
    length: int
    evaluation: bool
    interventions: int

    @property
    def intervention_rate(self) -> float:
        return self.interventions / max(self.length, 1)


@dataclass
class _OpenEpisode:
    shaped: float = 0.0
    raw: float = 0.0
    length: int = 0
    interventions: int = 0


@dataclass
class EpisodeTracker:
    """Accumulates per-episode returns from transitions that may span several batches."""
    open: dict[tuple[str, int], _OpenEpisode] = field(default_factory=dict)

    def add(self, actor_id: str, batch: StepBatch, shaped: np.ndarray, env_steps_after: np.ndarray) -> list[EpisodeRecord]:
        finished = []
        for i in range(batch.count):
            key = (actor_id, int(batch.episode_ids[i]))
            ep = self.open.setdefault(key, _OpenEpisode())
            ep.shaped += float(shaped[i])
            ep.raw += float(batch.raw_rewards[i])
            ep.length += 1
            ep.interventions += int(batch.intervention[i])
            if batch.terminated[i] or batch.truncated[i]:
                del self.open[key]
                finished.append(EpisodeRecord(int(env_steps_after[i]), key[1], ep.shaped, ep.raw, ep.length,
                                              bool(batch.evaluation[i]), ep.interventions))
        return finished

    def state_dict(self) -> dict:
        return {"open": [(k, vars(v)) for k, v in self.open.items()]}

    def load_state_dict(self, state: dict) -> None:
        self.open = {tuple(k): _OpenEpisode(**v) for k, v in state["open"]}


@dataclass
class IngestResult:
    duplicate: bool
    episodes: list[EpisodeRecord]


class LearnerCore:
    def __init__(self, cfg: ExperimentConfig, observation_dim: int, action_dim: int,
                 reward_term_names: tuple[str, ...], seed: int | None = None):
        self.cfg = cfg
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.reward_term_names = tuple(reward_term_names)
        self.seed = cfg.run.seed if seed is None else seed
        self.shaper = RewardShaper(cfg.reward, self.reward_term_names)
        self.config_warnings = lint_config(cfg.reward, cfg.algo, action_dim, self.shaper)
        self.live_lint = LiveRewardLint(sac_backend=True)
        self.device = resolve_device(cfg.learner.device)
        self.backend = make_backend(cfg.learner_algo(), observation_dim, action_dim, self.seed,
                                    observation_bounds(cfg.env), self.device)
        algo = cfg.algo
        self.buffers = RLPDBuffers(algo.online_buffer_capacity, algo.offline_buffer_capacity,
                                   observation_dim, action_dim, len(self.reward_term_names), algo.offline_ratio)
        self.rng = np.random.default_rng(self.seed)
        self.ledger = SequenceLedger()
        self.episodes = EpisodeTracker()
        self.env_steps = 0  # training transitions ingested
        self.sender_env_steps: dict[str, dict[str, int]] = {}  # actor_id -> incarnation -> training steps
        self.updates = 0
        self.weights_version = 0
        self.intervention_transitions = 0
        self.last_metrics: dict[str, float] = {}
        self.last_batch_offline_share = 0.0
        self._published_at: int | None = None  # updates at the last export; None: publish at once
        self.bc_pretrained = False  # the warm start ran (a resumed run does not repeat it)
        self.recording = TrainingRecording(cfg.demos.record_training)
        self.cross_episode_bootstrap = CrossEpisodeBootstrap() if cfg.quirks.bootstrap_across_episodes else None
        self.demonstrations = self._load_demonstrations()

    def _load_demonstrations(self) -> Demonstrations | None:
        """Fill the offline buffer from demos.datasets (checked against this env's spaces) and, for a
        fitted normalisation, freeze the normaliser to the demonstrations' statistics."""
        demos = self.cfg.demos
        if not demos.datasets:
            return None
        loaded = load_demonstrations(demos.datasets, dataset_layout(self.cfg.env), demos.max_episodes)
        capacity = self.buffers.offline.capacity
        if len(loaded.transitions) > capacity:
            raise DatasetError(f"demos.datasets hold {len(loaded.transitions)} transitions, more than "
                               f"algo.offline_buffer_capacity={capacity}; raise it or set demos.max_episodes")
        self.buffers.offline.add(loaded.transitions)
        mode = self.cfg.algo.observation_normalization
        if mode in FITTED_MODES:
            self.backend.normalizer.fit_to(mode, loaded.transitions.observations)
        return loaded

    # ---- warm start ----------------------------------------------------------------------
    def warm_start_due(self) -> bool:
        return self.cfg.algo.bc_pretrain_updates > 0 and not self.bc_pretrained

    def behaviour_cloning_step(self) -> float:
        """One behaviour-cloning update of the actor on a batch of offline transitions (with
        algo.bc_pretrain_critic, a critic update on the same batch first); returns the BC loss."""
        sample = self.buffers.offline.sample(self.cfg.algo.batch_size, self.rng)
        if self.cfg.algo.bc_pretrain_critic:
            critic_loss = self.backend.critic_update(TrainBatch.from_arrays(sample, self._shaped(sample)))
            if not np.isfinite(critic_loss):
                raise TrainingDiverged(f"critic pre-training: loss {critic_loss}")
        loss = self.backend.behaviour_cloning_update(torch.from_numpy(sample.observations),
                                                     torch.from_numpy(sample.actions))
        if not np.isfinite(loss):
            raise TrainingDiverged(f"behaviour cloning: loss {loss}")
        return loss

    # ---- data in -------------------------------------------------------------------------
    def ingest(self, batch: StepBatch) -> IngestResult:
        """Add a validated batch unless this actor process's sequence number was already ingested."""
        learner = self.cfg.learner
        batch.validate(self.observation_dim, self.action_dim, self.reward_term_names,
                       learner.max_batch_transitions, learner.max_abs_value)
        if self.ledger.contains(batch.sender, batch.sequence):
            return IngestResult(True, [])
        shaped = self.shaper(batch.reward_terms, batch.raw_rewards)
        if not np.all(np.isfinite(shaped)):
            bad = int(np.count_nonzero(~np.isfinite(shaped)))
            raise BatchError(f"the configured reward shaping makes {bad} of {batch.count} rewards NaN/inf "
                             f"(reward.type {self.cfg.reward.type}, scale {self.cfg.reward.scale}, shift "
                             f"{self.cfg.reward.shift}); set reward.clip or check the reward terms")
        training = ~batch.evaluation
        env_steps_after = self.env_steps + np.cumsum(training)
        self._store(batch, training)
        self.recording.add(batch.sender, batch, training)
        self.live_lint.observe_rewards(shaped[training])
        self.env_steps += int(training.sum())
        self.intervention_transitions += int(batch.intervention[training].sum())
        self.ledger.add(batch.sender, batch.sequence)
        per_process = self.sender_env_steps.setdefault(batch.actor_id, {})
        per_process[batch.actor_incarnation] = per_process.get(batch.actor_incarnation, 0) + int(training.sum())
        episodes = self.episodes.add(batch.sender, batch, shaped, env_steps_after)
        return IngestResult(False, episodes)

    def _store(self, batch: StepBatch, training: np.ndarray) -> None:
        """Put the training transitions into the buffers, with the configured quirks applied."""
        quirks = self.cfg.quirks
        episode_ends = batch.terminated[training] | batch.truncated[training]
        terminated = episode_ends if quirks.time_limit_as_terminal else batch.terminated[training]
        transitions = TransitionArrays(
            observations=batch.observations[training], actions=batch.actions[training],
            reward_terms=batch.reward_terms[training], raw_rewards=batch.raw_rewards[training],
            next_observations=batch.next_observations[training], terminated=terminated,
            intervention=batch.intervention[training], sequences=batch.transition_sequences[training])
        linker = self.cross_episode_bootstrap
        if linker is None:
            self.buffers.add(transitions)
            return
        transitions = linker.before_add(batch.sender, transitions, episode_ends, self.buffers)
        linker.after_add(batch.sender, transitions, episode_ends, self.buffers.add(transitions))

    def earlier_env_steps(self, actor_id: str, incarnation: str) -> int:
        """Training steps held from the other (earlier) processes of `actor_id`."""
        return sum(n for other, n in self.sender_env_steps.get(actor_id, {}).items() if other != incarnation)

    # ---- updates -------------------------------------------------------------------------
    def updates_due(self) -> int:
        """Updates owed at the configured update-to-data ratio, counted from learning_starts."""
        return max(0, updates_owed(self.cfg.algo, self.env_steps) - self.updates)

    def train_step(self) -> dict[str, float]:
        batch = self.sample_batch()
        try:
            metrics = self.backend.update(batch)
        except ValueError as error:  # e.g. torch.distributions refusing a NaN mean
            bad = parameters_finite(self.backend.state_dict())
            if bad is None:
                raise
            raise TrainingDiverged(f"update {self.updates + 1}: tensor '{bad}' is non-finite ({error})") from error
        metrics = {k: float(v) for k, v in metrics.items()}
        bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
        if bad:
            raise TrainingDiverged(f"update {self.updates + 1}: {', '.join(f'{k}={metrics[k]}' for k in bad)}; "
                                   f"the last checkpoint holds the last finite state")
        self.updates += 1
        self.live_lint.observe_critic_loss(metrics["critic_loss"])
        self.last_metrics.update(metrics)
        return metrics

    def sample_batch(self) -> TrainBatch:
        """An RLPD batch with its rewards shaped by the current reward configuration."""
        normalizer, mode = self.backend.normalizer, self.cfg.algo.observation_normalization
        if mode in FITTED_MODES and not bool(normalizer.fitted):
            normalizer.fit_to(mode, self.buffers.online.contents().observations)  # frozen from here on
        sample, n_offline = self.buffers.sample(self.cfg.algo.batch_size, self.rng)
        self.last_batch_offline_share = n_offline / len(sample)
        rewards = self._shaped(sample)
        offline = np.arange(len(sample)) >= len(sample) - n_offline  # the buffers put offline rows last
        return TrainBatch.from_arrays(sample, rewards, offline, bc_weight_at(self.cfg.algo, self.updates))

    def _shaped(self, sample: TransitionArrays) -> np.ndarray:
        rewards = self.shaper(sample.reward_terms, sample.raw_rewards)
        if not np.all(np.isfinite(rewards)):
            raise TrainingDiverged(f"the reward configuration turns stored transitions into NaN/inf rewards "
                                   f"({self.cfg.reward}); fix reward.* and restart")
        return rewards

    def weights_due(self) -> bool:
        every = self.cfg.learner.publish_weights_every_updates
        if self._published_at is None:
            return self.updates > 0 or self.bc_pretrained
        return self.updates - self._published_at >= every

    def export_weights(self) -> tuple[int, bytes, str]:
        """Bump the version and serialise the actor's weights: (version, data, sha256)."""
        actor_state = self.backend.actor_state_dict()
        self.check_finite(actor_state, "policy weights")
        self.weights_version += 1
        self._published_at = self.updates
        data, checksum = encode_weights(actor_state)
        return self.weights_version, data, checksum

    @property
    def weights_format(self) -> str:
        return WEIGHTS_FORMAT

    def warnings(self) -> list[str]:
        return [str(w) for w in self.config_warnings + self.live_lint.warnings()]

    def check_finite(self, state: dict, what: str) -> None:
        bad = parameters_finite(state)
        if bad is not None:
            raise TrainingDiverged(f"{what}: tensor '{bad}' contains NaN/inf at update {self.updates}")

    # ---- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume; refuses (TrainingDiverged) a state with NaN/inf parameters."""
        backend_state = self.backend.state_dict()
        self.check_finite(backend_state, "checkpoint")
        return {
            "format": 2, "backend_name": self.cfg.algo.backend, "config": self.cfg.to_dict(),
            "dims": (self.observation_dim, self.action_dim, self.reward_term_names),
            "backend": backend_state, "buffers": self.buffers.state_dict(),
            "ledger": self.ledger.state_dict(), "episodes": self.episodes.state_dict(),
            "recording": self.recording.state_dict(),
            "counters": {"env_steps": self.env_steps, "updates": self.updates, "weights_version": self.weights_version,
                         "intervention_transitions": self.intervention_transitions,
                         "sender_env_steps": self.sender_env_steps, "bc_pretrained": self.bc_pretrained},
            "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "saved_at": time.time(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["backend_name"] != self.cfg.algo.backend:
            raise ValueError(f"checkpoint was written by backend {state['backend_name']}, "
                             f"configured backend is {self.cfg.algo.backend}")
        if tuple(state["dims"][:2]) != (self.observation_dim, self.action_dim):
            raise ValueError(f"checkpoint dims {state['dims'][:2]} != configured "
                             f"{(self.observation_dim, self.action_dim)}")
        if tuple(state["dims"][2]) != self.reward_term_names:
            raise ValueError(f"checkpoint reward terms {list(state['dims'][2])} != the env's "
                             f"{list(self.reward_term_names)}")
        self.backend.load_state_dict(state["backend"])
        self.buffers.load_state_dict(state["buffers"])
        self.ledger.load_state_dict(state["ledger"])
        self.episodes.load_state_dict(state["episodes"])
        if "recording" in state:
            self.recording.load_state_dict(state["recording"])
        counters = state["counters"]
        self.env_steps, self.updates = counters["env_steps"], counters["updates"]
        self.weights_version = counters["weights_version"]
        self.intervention_transitions = counters["intervention_transitions"]
        self.sender_env_steps = counters.get("sender_env_steps", {})
        self.bc_pretrained = counters.get("bc_pretrained", False)
        self._published_at = None
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
