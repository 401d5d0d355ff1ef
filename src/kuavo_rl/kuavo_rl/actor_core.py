"""The actor without ROS: choose actions (policy, random warm-up, deterministic evaluation, or a
fresh human intervention), assemble transitions into sequenced batches, keep them until the
learner has persisted them, and swap in newer policy weights."""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from kuavo_rl.algos.base import ActorPolicy, decode_weights, updates_owed
from kuavo_rl.config import ExperimentConfig
from kuavo_rl.link_watch import LinkEvent, LinkWatch
from kuavo_rl.protocol import (LABEL_NAMES, LABEL_NONE, Acks, ActionDecision, ActorStatusInfo, EpisodeLabelInput,
                               InterventionInput, StepBatch, StepObservation)

log = logging.getLogger("kuavo_rl.actor")

# Every env takes actions in [-1, 1]^N; a takeover a rounding error outside is clipped, not refused.
ACTION_TOLERANCE = 1e-4


@dataclass
class _Unacked:
    batch: StepBatch
    sent_at: float
    received: bool = False


@dataclass
class ActorStats:
    episodes: int = 0
    final_eval_returns: list[float] = field(default_factory=list)  # raw env return
    weights_rejected: int = 0


class WeightsRejected(ValueError):
    pass


class ActorCore:
    def __init__(self, cfg: ExperimentConfig, observation_dim: int, action_dim: int,
                 reward_term_names: tuple[str, ...], policy: ActorPolicy, actor_id: str = "actor0",
                 clock=time.monotonic):
        self.cfg = cfg
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.reward_term_names = tuple(reward_term_names)
        self.policy = policy
        self.actor_id = actor_id
        # This process: a restarted actor numbers its batches from 0 again as a new sender.
        self.incarnation = uuid.uuid4().hex[:12]
        self.clock = clock
        self.rng = np.random.default_rng(cfg.run.seed + 1)
        self.policy_version = 0
        self.learner_updates = 0
        self.learner_run_id: str | None = None
        self.learner_link = LinkWatch("the learner", cfg.actor.learner_timeout_s, clock)
        self.env_steps = 0  # training transitions produced by this process
        self.earlier_env_steps = 0  # ... and by earlier processes of this actor_id (the learner says)
        self.next_transition_sequence = 0
        self.next_batch_sequence = 0
        self.pending_rows: list[dict] = []
        self.unacked: dict[int, _Unacked] = {}
        self.intervention: InterventionInput | None = None
        self.estopped = False
        self.pending_label = LABEL_NONE  # the operator's label, sent with the next step's action
        self.seen_labels: dict[str, int] = {}  # source -> the last label_id applied
        self.stats = ActorStats()
        self.final_eval_left: int | None = None  # set when training steps are done
        self.episode_is_eval = False
        self.episode_return = 0.0
        self._previous: tuple[StepObservation, ActionDecision] | None = None

    # ---- inputs from the learner and the operator -------------------------------------------
    def on_weights(self, version: int, learner_step: int, backend: str, data: bytes, checksum: str,
                   learner_run_id: str = "") -> None:
        """Swap in newer weights; raise WeightsRejected (keeping the current ones) otherwise.
        A restarted learner counts versions from its checkpoint, so a new run id accepts any version."""
        if backend != self.policy.backend_name:
            raise WeightsRejected(f"weights from backend {backend}, actor runs {self.policy.backend_name}")
        new_run = bool(learner_run_id) and learner_run_id != self.learner_run_id
        if not new_run:
            if version <= self.policy_version:
                raise WeightsRejected(f"weights version {version} is not newer than {self.policy_version}")
            if version - self.policy_version > self.cfg.actor.max_weights_version_jump:
                raise WeightsRejected(f"weights version {version} jumps more than actor.max_weights_version_jump="
                                      f"{self.cfg.actor.max_weights_version_jump} past {self.policy_version}")
        try:
            state = decode_weights(data, checksum)
            self.policy.load_actor_state_dict(state)
        except Exception as error:  # a corrupt payload must never take the actor down
            self.stats.weights_rejected += 1
            raise WeightsRejected(f"weights version {version} rejected: {error}") from error
        self._observe_learner_run(learner_run_id)
        self.policy_version = version
        self.learner_updates = learner_step

    def on_intervention(self, intervention: InterventionInput) -> None:
        """A takeover, e-stop or e-stop reset. The e-stop latches before anything is checked, from
        anyone: stopping is always safe. Everything else needs a signed message of this run, and
        only the operator's explicit reset clears the latch (losing the VR link never does)."""
        if intervention.estop:
            self.estopped = True
            self.intervention = None
            return
        if not intervention.authenticated:
            raise ValueError("takeover or reset not signed by this run's VR node")
        if intervention.active:
            action = intervention.action
            if len(action) != self.action_dim:
                raise ValueError(f"intervention action has {len(action)} dims, env expects {self.action_dim}")
            if not np.all(np.isfinite(action)):
                raise ValueError("intervention action contains NaN/inf")
            if np.max(np.abs(action)) > 1.0 + ACTION_TOLERANCE:
                shown = np.round(action, 3).tolist()
                raise ValueError(f"intervention action {shown} is outside the [-1, 1] action box")
        if intervention.estop_reset:  # only a message that passed every check may clear the latch
            self.estopped = False
        self.intervention = intervention

    def on_label(self, label: EpisodeLabelInput) -> bool:
        """The operator labels the current episode; each (source, label_id) counts once. Returns
        whether it is new. Only this run's signed labels count: ending episodes is steering."""
        if not label.authenticated:
            raise ValueError("episode label not signed by this run")
        if self.seen_labels.get(label.source) == label.label_id:
            return False
        self.seen_labels[label.source] = label.label_id
        if self.estopped:
            log.warning("episode label %s ignored: the e-stop is latched", LABEL_NAMES[label.label])
            return False
        self.pending_label = label.label
        return True

    def on_learner_status(self, learner_run_id: str) -> LinkEvent | None:
        """The learner's signed status: it is there (the restore event when that ends an outage), and
        a new run id means it restarted."""
        self._observe_learner_run(learner_run_id)
        return self.learner_link.heard()

    def check_learner_link(self) -> LinkEvent | None:
        """The loss event, once, when the learner has been silent for actor.learner_timeout_s."""
        return self.learner_link.check()

    def _observe_learner_run(self, learner_run_id: str) -> bool:
        """True when a learner restart is seen: whatever it had not persisted is gone, so resend it.
        At first contact, what it has not received (sent before its subscription existed) is resent
        at once rather than after actor.resend_after_s."""
        if not learner_run_id or learner_run_id == self.learner_run_id:
            return False
        restarted = self.learner_run_id is not None
        if restarted:
            log.warning("learner restarted (run %s -> %s): resending %d unpersisted batches",
                        self.learner_run_id, learner_run_id, len(self.unacked))
        for entry in self.unacked.values():
            if restarted or not entry.received:
                entry.received, entry.sent_at = False, -np.inf
        self.learner_run_id = learner_run_id
        return restarted

    def on_ack(self, learner_run_id: str, acks: Acks) -> None:
        if (acks.actor_id, acks.incarnation) != (self.actor_id, self.incarnation):
            return  # for another actor, or for an earlier process of this one
        self._observe_learner_run(learner_run_id)
        self.earlier_env_steps = max(self.earlier_env_steps, int(acks.earlier_env_steps))
        for seq in acks.received:
            if seq in self.unacked:
                self.unacked[seq].received = True
        for seq in list(acks.persisted) + list(acks.rejected):
            self.unacked.pop(seq, None)

    @property
    def run_env_steps(self) -> int:
        """Training steps of this actor_id over all its processes (a restart continues the run)."""
        return self.earlier_env_steps + self.env_steps

    # ---- the step protocol ------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.final_eval_left == 0 and not self.pending_rows

    def _fresh_intervention(self) -> InterventionInput | None:
        iv = self.intervention
        if iv is None or self.clock() - iv.received_at > self.cfg.actor.intervention_timeout_s:
            return None
        return iv

    def _choose(self, obs: StepObservation) -> ActionDecision:
        if self.estopped:  # hold (zero action); not a demonstration, so not flagged as intervention
            return ActionDecision(obs.episode_id, obs.step_index, np.zeros(self.action_dim, np.float32))
        iv = self._fresh_intervention()
        if iv is not None and iv.active:
            if self.episode_is_eval:
                self._preempt_evaluation()
            action = np.clip(np.asarray(iv.action, np.float32), -1.0, 1.0)  # within ACTION_TOLERANCE of it
            return ActionDecision(obs.episode_id, obs.step_index, action, True)
        warming_up = (self.policy_version == 0 and self.run_env_steps < self.cfg.algo.learning_starts
                      and not self.warm_started)
        if warming_up and not self.episode_is_eval:
            action = self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
        else:
            action = self.policy.act(obs.observation, deterministic=self.episode_is_eval)
        return ActionDecision(obs.episode_id, obs.step_index, np.clip(action, -1.0, 1.0).astype(np.float32))

    def _preempt_evaluation(self) -> None:
        """The operator took over an evaluation episode: it becomes a training episode (its return
        says nothing about the policy alone), and its transitions so far are trained on too."""
        log.info("takeover during evaluation episode: it no longer counts as an evaluation")
        self.episode_is_eval = False
        for row in self.pending_rows:
            row["evaluation"] = False
        self.env_steps += len(self.pending_rows)  # all of this episode's: episodes end with a flush

    def _start_episode(self) -> None:
        self.stats.episodes += 1
        every = self.cfg.actor.eval_every_episodes
        self.episode_is_eval = self.final_eval_left is not None or (every > 0 and self.stats.episodes % every == 0)
        self.episode_return = 0.0

    def check(self, obs: StepObservation) -> None:
        """Raise ValueError for an observation this actor cannot use (before it is held or answered)."""
        if obs.observation.shape != (self.observation_dim,):
            raise ValueError(f"observation has shape {obs.observation.shape}, expected ({self.observation_dim},)")
        if obs.reward_terms.shape != (len(self.reward_term_names),):
            raise ValueError(f"observation has {obs.reward_terms.size} reward terms, expected "
                             f"{len(self.reward_term_names)} {list(self.reward_term_names)}")
        limit = self.cfg.learner.max_abs_value  # refused here rather than lose the whole batch at the learner
        values = np.concatenate([obs.observation, obs.reward_terms, [obs.raw_reward]])
        largest = float(np.max(np.abs(values)))
        if not largest <= limit:
            raise ValueError(f"observation has a value of magnitude {largest:.3g} > learner.max_abs_value={limit:g}")

    def on_step(self, obs: StepObservation) -> ActionDecision | None:
        """Answer an observation with an action, a reset, or None once finished."""
        if self.finished:
            return None  # e.g. the env resending its last observation while the last acks arrive
        self.check(obs)
        reset = ActionDecision(obs.episode_id, obs.step_index, np.zeros(self.action_dim, np.float32), reset=True)
        if obs.step_index == 0:
            self._start_episode()
        elif self._previous is None:
            return reset  # joined mid-episode (actor restart): ask for a fresh episode rather than guess
        else:
            self._record(obs)
        if obs.terminated or obs.truncated:
            self.pending_label = LABEL_NONE  # a label arriving as the episode ended does not carry over
            self._end_episode()
            self._previous = None
            return None if self.finished else reset
        decision = self._choose(obs)
        if self.pending_label != LABEL_NONE and not self.estopped:
            decision.label, self.pending_label = self.pending_label, LABEL_NONE
        self._previous = (obs, decision)
        return decision

    def _record(self, obs: StepObservation) -> None:
        previous, decision = self._previous
        if obs.episode_id != previous.episode_id or obs.step_index != previous.step_index + 1:
            log.warning("observation (%d, %d) does not follow (%d, %d); transition dropped",
                        obs.episode_id, obs.step_index, previous.episode_id, previous.step_index)
            return
        self.pending_rows.append({
            "transition_sequence": self.next_transition_sequence, "episode_id": obs.episode_id,
            "step_index": obs.step_index, "observation": previous.observation, "action": decision.action,
            "next_observation": obs.observation, "reward_terms": obs.reward_terms, "raw_reward": obs.raw_reward,
            "terminated": obs.terminated, "truncated": obs.truncated, "intervention": decision.intervention,
            "evaluation": self.episode_is_eval, "policy_version": self.policy_version,
        })
        self.next_transition_sequence += 1
        self.episode_return += obs.raw_reward
        if not self.episode_is_eval:
            self.env_steps += 1

    def _end_episode(self) -> None:
        if self.episode_is_eval and self.final_eval_left is not None:
            self.stats.final_eval_returns.append(self.episode_return)
            self.final_eval_left -= 1
        if self.final_eval_left is None and self.run_env_steps >= self.cfg.run.total_env_steps:
            self.final_eval_left = self.cfg.actor.final_eval_episodes
        self.flush()

    # ---- batches ----------------------------------------------------------------------------
    def flush(self) -> StepBatch | None:
        """Turn pending transitions into a sequenced batch (kept until persisted)."""
        if not self.pending_rows:
            return None
        batch = StepBatch.from_rows(self.actor_id, self.next_batch_sequence, self.observation_dim, self.action_dim,
                                    self.reward_term_names, self.pending_rows, self.incarnation)
        self.pending_rows = []
        self.unacked[batch.sequence] = _Unacked(batch, sent_at=-np.inf)
        self.next_batch_sequence += 1
        return batch

    def batches_to_send(self, resend_after_s: float = 2.0) -> list[StepBatch]:
        """Full batches are cut here; unreceived batches are (re)sent after `resend_after_s`."""
        if len(self.pending_rows) >= self.cfg.actor.batch_transitions:
            self.flush()
        now = self.clock()
        due = [e for e in self.unacked.values() if not e.received and now - e.sent_at >= resend_after_s]
        for entry in due:
            entry.sent_at = now
        return [e.batch for e in sorted(due, key=lambda e: e.batch.sequence)]

    @property
    def all_received(self) -> bool:
        return not self.pending_rows and all(e.received for e in self.unacked.values())

    @property
    def all_delivered(self) -> bool:
        """Every step and final evaluation done, and every batch received by the learner."""
        return self.finished and self.all_received

    @property
    def unpersisted_transitions(self) -> int:
        return sum(len(entry.batch.transition_sequences) for entry in self.unacked.values()) + len(self.pending_rows)

    def status(self) -> ActorStatusInfo:
        link = self.learner_link
        return ActorStatusInfo(
            self.actor_id, self.incarnation, self.learner_run_id or "", env_steps=self.run_env_steps,
            episodes=self.stats.episodes, policy_version=self.policy_version, unpersisted_batches=len(self.unacked),
            unpersisted_transitions=self.unpersisted_transitions, waiting_for_learner=self.waiting_for_learner(),
            estopped=self.estopped, finished=self.all_delivered, learner_link_lost=link.lost,
            learner_silent_s=link.silent_s, link_outages=len(link.outages_s), last_outage_s=link.last_outage_s)

    @property
    def warm_started(self) -> bool:
        """The learner pre-trains the policy on demonstrations: act with it, not randomly."""
        return self.cfg.algo.bc_pretrain_updates > 0

    def waiting_for_learner(self) -> bool:
        """Lockstep runs pause while the learner is far behind the configured update-to-data ratio,
        so a pipeline run trains like the in-process one whatever the machine's speed; the final
        evaluation waits for the weights of the learner's last update, as in-process. A warm-started
        actor waits for the pre-trained policy before its first action; with actor.on_learner_lost: hold,
        the actor waits while the learner's link is lost."""
        if self.warm_started and self.policy_version == 0:
            return True
        if self.learner_link.lost and self.cfg.actor.on_learner_lost == "hold":
            return True
        if not self.cfg.actor.sync_with_learner or self.cfg.env.timing != "lockstep":
            return False
        algo = self.cfg.algo
        owed = updates_owed(algo, self.run_env_steps)
        if owed == 0:
            return False
        behind, every = owed - self.learner_updates, self.cfg.learner.publish_weights_every_updates
        if self.final_eval_left:  # the learner publishes every `every` updates: the last ones are < every behind
            return behind >= every
        per_batch = self.cfg.actor.batch_transitions * algo.utd_ratio
        return behind > 2 * (every + per_batch)
