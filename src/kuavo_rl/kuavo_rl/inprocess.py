"""Training without ROS: the same env, ActorCore and LearnerCore as the pipeline, in one loop.

The diagnostics sweeps and the pipeline check use this as the reference the pipeline must match.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import torch

from kuavo_rl.actor_core import ActorCore, StepObservation
from kuavo_rl.algos.base import make_actor_policy
from kuavo_rl.config import ExperimentConfig
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


def _observation(episode_id: int, step_index: int, obs, info, reward=0.0, terminated=False, truncated=False):
    return StepObservation(episode_id, step_index, np.asarray(obs, np.float32),
                           np.asarray(info["reward_terms"], np.float32), float(reward), bool(terminated), bool(truncated))


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
    episode_id = 0
    obs, info = env.reset(seed=cfg.run.seed)
    step = _observation(episode_id, 0, obs, info)
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
        if decision.reset:
            episode_id += 1
            obs, info = env.reset()
            step = _observation(episode_id, 0, obs, info)
        else:
            obs, reward, terminated, truncated, info = env.step(decision.action)
            step = _observation(episode_id, decision.step_index + 1, obs, info, reward, terminated, truncated)
    log.close()
    env.close()
    return learner
