"""Training without ROS: the same env, ActorCore and LearnerCore as the pipeline, in one loop.

The diagnostics sweeps and the pipeline check use this as the reference the pipeline must match.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import torch

from kuavo_rl.actor_core import ActorCore
from kuavo_rl.algos.base import make_actor_policy
from kuavo_rl.config import ExperimentConfig
from kuavo_rl.env_core import EnvStepper
from kuavo_rl.envs import make_env
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.progress import ProgressLine
from kuavo_rl.run_log import RunLog


def env_spec(cfg: ExperimentConfig):
    """(observation_dim, action_dim, reward_term_names) of the configured env."""
    env = make_env(cfg.env)
    spec = env.observation_space.shape[0], env.action_space.shape[0], tuple(env.reward_term_names)
    env.close()
    return spec


def train_inprocess(cfg: ExperimentConfig, run_dir: str | Path, quiet: bool = False) -> LearnerCore:
    """Train to cfg.run.total_env_steps plus the final evaluation episodes; logs into run_dir."""
    torch.set_num_threads(cfg.learner.torch_threads)
    env = make_env(cfg.env, seed=cfg.run.seed)
    obs_dim, act_dim, terms = env.observation_space.shape[0], env.action_space.shape[0], tuple(env.reward_term_names)
    learner = LearnerCore(cfg, obs_dim, act_dim, terms)
    actor = ActorCore(cfg, obs_dim, act_dim, terms, make_actor_policy(cfg.algo, obs_dim, act_dim, cfg.run.seed + 7))
    run_id = uuid.uuid4().hex
    log = RunLog(run_dir)
    progress = ProgressLine(cfg.run.total_env_steps, "train in-process", enabled=not quiet)
    started = time.monotonic()
    stepper = EnvStepper(env, seed=cfg.run.seed)  # the env node's stepping code
    step = stepper.reset()
    last_eval = float("nan")
    while True:
        decision = actor.on_step(step)
        finished = decision is None
        batches = actor.batches_to_send(resend_after_s=0.0)
        for batch in batches:
            result = learner.ingest(batch)
            for record in result.episodes:
                log.episode(record)
                if record.evaluation:
                    last_eval = record.episode_return
        if batches:
            sequences = [b.sequence for b in batches]
            actor.on_ack(run_id, sequences, sequences, [])
        for _ in range(learner.updates_due()):
            metrics = learner.train_step()
            log.update(learner.updates, learner.env_steps, metrics, learner.last_batch_offline_share)
            if learner.weights_due():
                version, data, checksum = learner.export_weights()
                actor.on_weights(version, learner.updates, cfg.algo.backend, data, checksum, run_id)
        elapsed = time.monotonic() - started
        progress.update(min(actor.env_steps, cfg.run.total_env_steps),
                        f"updates {learner.updates} ({learner.updates / max(elapsed, 1e-9):.1f}/s) "
                        f"eval return {last_eval:.2f}", force=finished)
        if finished:
            break
        step = stepper.apply(decision)
    log.close()
    env.close()
    return learner
