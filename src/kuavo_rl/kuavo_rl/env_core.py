"""The env side of the env-node protocol without ROS: reset/step a gymnasium env by
(episode_id, step_index), refusing actions that answer a different step."""
from __future__ import annotations

import numpy as np

from kuavo_rl.protocol import ActionDecision, StepObservation


class EnvStepper:
    def __init__(self, env, seed: int = 0):
        self.env = env
        self.action_dim = env.action_space.shape[0]
        self.reward_term_names = tuple(env.reward_term_names)
        self.episode_id = -1
        self.seed = seed
        self.current: StepObservation | None = None
        self.steps = 0

    def reset(self) -> StepObservation:
        self.episode_id += 1
        obs, info = self.env.reset(seed=self.seed if self.episode_id == 0 else None)
        self.current = StepObservation(self.episode_id, 0, np.asarray(obs, np.float32),
                                       np.asarray(info["reward_terms"], np.float32), 0.0, False, False)
        return self.current

    def answers_current(self, decision: ActionDecision) -> bool:
        c = self.current
        return c is not None and (decision.episode_id, decision.step_index) == (c.episode_id, c.step_index)

    def check(self, decision: ActionDecision) -> None:
        """Raise ValueError for a decision that cannot be applied (a step after the episode ended)."""
        c = self.current
        if c is not None and not decision.reset and (c.terminated or c.truncated):
            raise ValueError(f"episode {c.episode_id} has ended; only a reset is accepted")

    def apply(self, decision: ActionDecision) -> StepObservation:
        """Step (or reset) with an action that answers the current observation."""
        self.check(decision)
        if decision.reset or self.current is None:
            return self.reset()
        obs, reward, terminated, truncated, info = self.env.step(decision.action)
        self.steps += 1
        self.current = StepObservation(self.episode_id, self.current.step_index + 1, np.asarray(obs, np.float32),
                                       np.asarray(info["reward_terms"], np.float32), float(reward),
                                       bool(terminated), bool(truncated))
        return self.current
