"""The seed's diagnostic task: output an N-dimensional target action.

Reward terms expose the action error so that the learner, not the env, chooses the reward
(mse, shaped, env, ...). The env's own raw reward is the MSE form, -mean((a - target)^2).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class TargetActionEnv(gym.Env):
    """Actions in [-1, 1]^N; the best action equals `target` in every dimension.

    Observation (N + 1 floats): `zero_obs` is all zeros (the task is then a bandit);
    `real_obs` is the previous action followed by the episode progress t / episode_steps.
    """

    metadata = {"render_modes": []}
    reward_term_names = ("action_error_sq_mean", "action_error_norm")

    def __init__(self, action_dim: int = 14, target: float = 0.0, obs_mode: str = "zero_obs",
                 episode_steps: int = 200, seed: int | None = None):
        if obs_mode not in ("zero_obs", "real_obs"):
            raise ValueError(f"obs_mode must be zero_obs or real_obs, got {obs_mode!r}")
        self.action_dim = int(action_dim)
        self.target = np.full(self.action_dim, float(target), dtype=np.float32)
        self.obs_mode = obs_mode
        self.episode_steps = int(episode_steps)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32, seed=seed)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (self.action_dim + 1,), np.float32, seed=seed)
        self._t = 0
        self._last_action = np.zeros(self.action_dim, np.float32)

    def _observation(self) -> np.ndarray:
        if self.obs_mode == "zero_obs":
            return np.zeros(self.action_dim + 1, np.float32)
        progress = np.float32(self._t / self.episode_steps)
        return np.append(self._last_action, progress).astype(np.float32)

    def reward_terms(self, action: np.ndarray) -> np.ndarray:
        error = action - self.target
        return np.array([np.mean(error ** 2), np.linalg.norm(error)], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._last_action = np.zeros(self.action_dim, np.float32)
        return self._observation(), {"reward_terms": np.zeros(len(self.reward_term_names), np.float32)}

    def step(self, action):
        action = np.asarray(action, dtype=np.float32).reshape(self.action_dim)
        if not np.all(np.isfinite(action)):
            raise ValueError("action contains NaN or inf")
        action = np.clip(action, -1.0, 1.0)
        terms = self.reward_terms(action)
        self._t += 1
        self._last_action = action
        truncated = self._t >= self.episode_steps
        return self._observation(), float(-terms[0]), False, truncated, {"reward_terms": terms}
