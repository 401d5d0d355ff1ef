"""Training without ROS: the same env stepping, ActorCore and LearnerLoop as the pipeline, in one loop.

The diagnostics sweeps and the pipeline check use this as the reference the pipeline must match.
Nothing is checkpointed: the learner's memory is the store, so batches are persisted at once.
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Callable

from kuavo_rl.actor_core import ActorCore
from kuavo_rl.algos import make_actor_policy
from kuavo_rl.config import ExperimentConfig
from kuavo_rl.env_core import EnvStepper
from kuavo_rl.envs import env_spec, make_env
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.learner_loop import LearnerLoop
from kuavo_rl.protocol import Acks
from kuavo_rl.threads import learner_threads, set_torch_threads


def _deliver(actor: ActorCore, run_id: str, acks: list[Acks]) -> None:
    for ack in acks:
        actor.on_ack(run_id, ack)


def _publish_due_weights(loop: LearnerLoop, actor: ActorCore, backend: str, run_id: str) -> None:
    if loop.core.weights_due():
        version, data, checksum = loop.core.export_weights()
        actor.on_weights(version, loop.core.updates, backend, data, checksum, run_id)


def train_inprocess(cfg: ExperimentConfig, run_dir: str | Path, quiet: bool = False,
                    after_step: Callable[[LearnerLoop, ActorCore], None] | None = None) -> LearnerCore:
    """Train to cfg.run.total_env_steps plus the final evaluation episodes; logs into run_dir.
    `after_step(loop, actor)` runs after every env step (benchmarks evaluate the current policy)."""
    set_torch_threads(learner_threads(cfg.learner.torch_threads))
    spec = env_spec(cfg.env)
    stepper = EnvStepper(make_env(cfg.env, seed=cfg.run.seed), seed=cfg.run.seed)  # the env node's stepping code
    loop = LearnerLoop(cfg, spec, run_dir, persist=False, progress_label="train in-process", quiet=quiet)
    actor = ActorCore(cfg, *spec, make_actor_policy(cfg.algo, spec.observation_dim, spec.action_dim, cfg.run.seed + 7),
                      actor_id=cfg.actor.actor_id)
    run_id = uuid.uuid4().hex
    for message in (cfg.quirks_summary(), loop.demonstrations_summary(), loop.warm_start()):
        if message and not quiet:
            print(f"[train in-process] {message}", file=sys.stderr)
    _publish_due_weights(loop, actor, cfg.algo.backend, run_id)  # a warm-started actor starts from its policy
    step = stepper.reset()
    while True:
        decision = actor.on_step(step)
        finished = decision is None
        batches = actor.batches_to_send(resend_after_s=0.0)
        if batches:
            acks = loop.new_acks(actor.actor_id, actor.incarnation)
            for batch in batches:
                loop.receive(batch, acks)
            _deliver(actor, run_id, [acks, *loop.checkpoint()[1]])
        while loop.train():  # it stops where weights are due
            _publish_due_weights(loop, actor, cfg.algo.backend, run_id)
        loop.report_progress(force=finished)
        if after_step is not None:
            after_step(loop, actor)
        if finished:
            break
        step = stepper.apply(decision)
    written = loop.close()
    if written and not quiet:
        print(f"[train in-process] {written}", file=sys.stderr)
    stepper.env.close()
    return loop.core
