"""Small configurations and drivers for the actor and learner cores (no ROS)."""
import numpy as np

from kuavo_rl.actor_core import ActorCore
from kuavo_rl.algos import make_actor_policy
from kuavo_rl.config import config_from_dict
from kuavo_rl.protocol import StepObservation

TERMS = ("action_error_sq_mean", "action_error_norm")


def small_cfg(**algo):
    return config_from_dict({"env": {"action_dim": 2, "episode_steps": 5},
                             "algo": {"batch_size": 8, "learning_starts": 4, "hidden_dims": [16, 16], **algo},
                             "run": {"total_env_steps": 20}, "actor": {"batch_transitions": 4, "eval_every_episodes": 0}})


def make_actor(cfg, clock=lambda: 0.0):
    return ActorCore(cfg, 3, 2, TERMS, make_actor_policy(cfg.algo, 3, 2, 0), clock=clock)


def run_episode(actor: ActorCore, episode_id: int, length: int = 5, truncate=True):
    obs = StepObservation(episode_id, 0, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, False)
    decisions = []
    for step in range(1, length + 2):
        decision = actor.on_step(obs)
        decisions.append(decision)
        if decision is None or decision.reset:
            break
        obs = StepObservation(episode_id, step, np.full(3, step, np.float32), np.array([0.1, 0.2], np.float32),
                              -0.1, False, truncate and step == length)
    return decisions
