"""The learner's work cycle without ROS, shared by the learner node and the in-process trainer:
take batches in exactly once, acknowledge them (received now, persisted once a checkpoint holds
them), train at the configured update-to-data ratio, checkpoint on a cadence, log and report.

The actor keeps every batch until it is acknowledged as persisted, so the ledger below is what
makes a learner crash lose nothing: a batch is only "persisted" after the checkpoint that holds it.
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from kuavo_rl.algos.normalization import FITTED_MODES
from kuavo_rl.checkpoint import load_latest, remove_stale_temporaries, save_checkpoint
from kuavo_rl.config import ExperimentConfig
from kuavo_rl.datasets import dataset_layout
from kuavo_rl.envs import EnvSpec, observation_names
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.progress import ProgressLine
from kuavo_rl.protocol import Acks, BatchError, StepBatch
from kuavo_rl.run_log import RunLog, drop_rows_after, write_spaces

Sender = tuple[str, str]  # (actor_id, incarnation): one actor process


class AckLedger:
    """Per actor process, the batches received since the last checkpoint."""

    def __init__(self):
        self.unpersisted: dict[Sender, set[int]] = defaultdict(set)

    def on_ingested(self, sender: Sender, sequence: int, duplicate: bool) -> bool:
        """Record an ingested batch; True when it is already persisted (a resend of a batch that the
        restored checkpoint holds), False when it waits for the next checkpoint."""
        if duplicate and sequence not in self.unpersisted[sender]:
            return True
        self.unpersisted[sender].add(sequence)
        return False

    @property
    def pending(self) -> bool:
        return any(self.unpersisted.values())

    def persisted(self) -> dict[Sender, list[int]]:
        """After a checkpoint: everything received so far is persisted."""
        persisted = {sender: sorted(sequences) for sender, sequences in self.unpersisted.items() if sequences}
        self.unpersisted.clear()
        return persisted


class CheckpointCadence:
    """Checkpoint every `every_updates` updates, and every `period_s` while data is unpersisted."""

    def __init__(self, every_updates: int, period_s: float, clock=time.monotonic):
        self.every_updates, self.period_s, self.clock = every_updates, period_s, clock
        self.last_updates = 0
        self.last_time = clock()

    def due(self, updates: int, unpersisted: bool) -> bool:
        crossed = updates // self.every_updates > self.last_updates // self.every_updates
        return crossed or (unpersisted and self.clock() - self.last_time >= self.period_s)

    def mark(self, updates: int) -> None:
        self.last_updates, self.last_time = updates, self.clock()


class LearnerLoop:
    """LearnerCore plus everything around it that is not ROS: acks, checkpoints, logs, progress.

    With `persist=False` (in-process runs) nothing is written to disk: memory is the store, so a
    "checkpoint" acknowledges everything received as persisted at once.
    """

    def __init__(self, cfg: ExperimentConfig, spec: EnvSpec, run_dir: str | Path, persist: bool = True,
                 progress_label: str = "learner", quiet: bool = False, clock=time.monotonic):
        self.cfg = cfg
        self.core = LearnerCore(cfg, *spec)
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints" if persist else None
        if self.checkpoint_dir is not None:
            remove_stale_temporaries(self.checkpoint_dir)  # left by a learner killed mid-write
        self.log = RunLog(self.run_dir)
        self.spaces_file = write_spaces(self.run_dir, observation_names(cfg.env), spec.action_dim, spec.reward_term_names)
        self.ledger = AckLedger()
        self.cadence = CheckpointCadence(cfg.learner.checkpoint_every_updates, cfg.learner.checkpoint_period_s, clock)
        self.clock = clock
        self.batches_rejected = 0
        self.last_episode = {"return": float("nan"), "eval": float("nan"), "intervention_rate": 0.0}
        self.progress = ProgressLine(cfg.run.total_env_steps, progress_label,
                                     enabled=cfg.run.progress_line and not quiet, clock=clock)
        self._rate_mark = (clock(), 0)

    # ---- data in -------------------------------------------------------------------------
    def resume(self) -> str | None:
        """Continue from the latest checkpoint, if any; returns what was restored, for the log."""
        state = load_latest(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        if state is None:
            return None
        self.core.load_state_dict(state)
        saved_reward, reward = state["config"]["reward"], self.cfg.to_dict()["reward"]
        relabelled = (f"; reward configuration changed ({saved_reward} -> {reward}): all stored transitions "
                      f"are now shaped with the new one" if saved_reward != reward else "")
        self.cadence.mark(self.core.updates)
        self._rate_mark = (self.clock(), self.core.updates)
        dropped = drop_rows_after(self.run_dir / "episodes.csv", "env_steps", self.core.env_steps)
        dropped += drop_rows_after(self.run_dir / "updates.csv", "updates", self.core.updates)
        return (f"resumed from {self.checkpoint_dir / 'latest.pt'}: {self.core.updates} updates, "
                f"{self.core.env_steps} env steps, weights v{self.core.weights_version} "
                f"({dropped} log rows past the checkpoint dropped){relabelled}")

    def new_acks(self, actor_id: str, incarnation: str) -> Acks:
        """An empty answer to one actor process, telling it how far its earlier processes got."""
        return Acks(actor_id, incarnation, self.core.earlier_env_steps(actor_id, incarnation))

    def receive(self, batch: StepBatch, acks: Acks) -> str | None:
        """Ingest one batch and note the answer in `acks`; a bad batch is rejected: returns why."""
        try:
            result = self.core.ingest(batch)
        except BatchError as error:
            return self.reject(batch.sequence, str(error), acks)
        acks.earlier_env_steps = self.core.earlier_env_steps(batch.actor_id, batch.actor_incarnation)
        if self.ledger.on_ingested((batch.actor_id, batch.actor_incarnation), batch.sequence, result.duplicate):
            acks.persisted.append(batch.sequence)
        else:
            acks.received.append(batch.sequence)
        for record in result.episodes:
            self.log.episode(record)
            self.last_episode["eval" if record.evaluation else "return"] = record.episode_return
            if not record.evaluation:
                self.last_episode["intervention_rate"] = record.intervention_rate
        return None

    def reject(self, sequence: int, reason: str, acks: Acks) -> str:
        self.batches_rejected += 1
        acks.rejected.append(sequence)
        acks.rejected_reasons.append(reason)
        return reason

    def demonstrations_summary(self) -> str | None:
        demos = self.core.demonstrations
        if demos is None:
            return None
        labels = ", ".join(f"{k} {v}" for k, v in demos.labels.items())
        normalizer = self.cfg.algo.observation_normalization
        fitted = f"; observation normalisation ({normalizer}) fitted to them" if normalizer in FITTED_MODES else ""
        return (f"demonstrations: {demos.episodes} episodes, {len(demos.transitions)} transitions from "
                f"{', '.join(self.cfg.demos.datasets)} (sources {', '.join(demos.sources)}; labels {labels}) "
                f"in the offline buffer{fitted}")

    # ---- work ----------------------------------------------------------------------------
    def warm_start(self, should_stop=lambda: False) -> str | None:
        """Behaviour-cloning pre-training of the actor on the offline buffer, once per run (with a
        progress line); returns what it did, for the log."""
        core = self.core
        if not core.warm_start_due():
            return None
        total = self.cfg.algo.bc_pretrain_updates
        progress = ProgressLine(total, "behaviour cloning", enabled=self.progress.enabled, clock=self.clock)
        losses = []
        for done in range(1, total + 1):
            if should_stop():
                return f"behaviour cloning interrupted after {done - 1} updates (it reruns on resume)"
            losses.append(core.behaviour_cloning_step())
            progress.update(done, f"bc loss {losses[-1]:.4f}", force=done == total)
        core.bc_pretrained = True
        return (f"warm start: {total} behaviour-cloning updates on {len(core.buffers.offline)} offline transitions, "
                f"bc loss {losses[0]:.4f} -> {losses[-1]:.4f}")

    def train(self, max_updates: int | None = None) -> int:
        """Run the updates owed at the configured update-to-data ratio (at most `max_updates`); returns how many.
        Stops after an update that makes new weights due, for the caller to publish them: so the pipeline's
        learner and the in-process trainer publish at the same update counts, and their actors act alike."""
        due = self.core.updates_due()
        count = due if max_updates is None else min(due, max_updates)
        for done in range(1, count + 1):
            metrics = self.core.train_step()
            self.log.update(self.core.updates, self.core.env_steps, metrics, self.core.last_batch_offline_share)
            if self.core.weights_due():
                return done
        return count

    def checkpoint_due(self) -> bool:
        return self.cadence.due(self.core.updates, self.ledger.pending)

    def checkpoint(self) -> tuple[Path | None, list[Acks]]:
        """Persist everything (atomically) and return the persisted acks for every actor. In memory
        mode nothing is written: the acks alone (this runs after every batch in-process)."""
        path = None
        if self.checkpoint_dir is not None:
            path = save_checkpoint(self.core.state_dict(), self.checkpoint_dir)
            self.log.flush()  # the logs on disk then match the checkpoint
        self.cadence.mark(self.core.updates)
        acks = []
        for (actor_id, incarnation), sequences in self.ledger.persisted().items():
            ack = self.new_acks(actor_id, incarnation)
            ack.persisted = sequences
            acks.append(ack)
        return path, acks

    # ---- reporting -----------------------------------------------------------------------
    def recent_update_rate(self) -> float:
        """Updates/s since the previous call (the rate now, not the average since start)."""
        now, updates = self.clock(), self.core.updates
        last_time, last_updates = self._rate_mark
        self._rate_mark = (now, updates)
        return (updates - last_updates) / max(now - last_time, 1e-9)

    def report_progress(self, update_rate: float | None = None, force: bool = False, extra: str = "") -> str | None:
        """The periodic status line; `update_rate` defaults to the rate since the previous line (the learner's
        real rate now, not an average diluted by the warm-up); `extra` is appended (e.g. the actors' link health)."""
        if not self.progress.due(force):
            return None
        core, last = self.core, self.last_episode
        if update_rate is None:
            update_rate = self.recent_update_rate()
        return self.progress.update(
            min(core.env_steps, self.cfg.run.total_env_steps),
            f"updates {core.updates} ({update_rate:.1f}/s now) return {last['return']:.2f} eval {last['eval']:.2f} "
            f"buffers {len(core.buffers.online)}/{len(core.buffers.offline)} "
            f"takeovers {core.intervention_transitions} (last episode {100 * last['intervention_rate']:.0f}%)"
            + (f" | {extra}" if extra else ""), force=force)

    def write_recording(self) -> str | None:
        """The takeovers (or training episodes) received so far as a LeRobotDataset in the run directory,
        rewritten whole from the learner's record of them (which the checkpoint holds)."""
        recording, env = self.core.recording, self.cfg.env
        if not len(recording):
            return None
        root = self.run_dir / "datasets" / recording.mode
        written = recording.write(root, dataset_layout(env), fps=max(1, round(env.rate_hz)),
                                  task=f"{env.name}: {recording.mode}", env=self.cfg.to_dict()["env"])
        return f"{written} {recording.mode} segments ({len(recording)} transitions) written as a LeRobotDataset to {root}"

    def close(self) -> str | None:
        """Close the logs and write the training recording; returns what was written, for the log."""
        try:
            return self.write_recording()
        finally:
            self.log.close()
