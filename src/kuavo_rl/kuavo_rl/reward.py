"""Reward shaping from configuration, shared by the pipeline learner and the in-process diagnostics.

    r = clip(scale * (base + shift))   with base one of
    mse:            -mean((a - t)^2)        from the term action_error_sq_mean
    shaped:          1 / (1 + ||a - t||)    from the term action_error_norm
    env:             the env's raw reward
    weighted_terms:  sum_k w_k * term_k
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kuavo_rl.config import RewardConfig

TERMS_NEEDED = {"mse": ("action_error_sq_mean",), "shaped": ("action_error_norm",), "env": ()}


class RewardShaper:
    def __init__(self, cfg: RewardConfig, term_names: tuple[str, ...] | list[str]):
        self.cfg = cfg
        self.term_names = tuple(term_names)
        needed = TERMS_NEEDED.get(cfg.type, tuple(cfg.weights))
        missing = [t for t in needed if t not in self.term_names]
        if missing:
            raise ValueError(f"reward.type {cfg.type} needs reward terms {missing}, "
                             f"but the env provides {list(self.term_names)}")

    def _term(self, terms: np.ndarray, name: str) -> np.ndarray:
        return terms[:, self.term_names.index(name)]

    def base(self, terms: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """terms (B, T), raw (B,) -> base reward (B,)."""
        kind = self.cfg.type
        if kind == "mse":
            return -self._term(terms, "action_error_sq_mean")
        if kind == "shaped":
            return 1.0 / (1.0 + self._term(terms, "action_error_norm"))
        if kind == "env":
            return raw.astype(np.float32)
        return sum(w * self._term(terms, name) for name, w in self.cfg.weights.items())

    def __call__(self, terms: np.ndarray, raw: np.ndarray) -> np.ndarray:
        terms = np.asarray(terms, np.float32).reshape(len(raw), len(self.term_names))
        reward = self.cfg.scale * (self.base(terms, np.asarray(raw, np.float32)) + self.cfg.shift)
        if self.cfg.clip is not None:
            reward = np.clip(reward, *self.cfg.clip)
        return reward.astype(np.float32)

    def bounds(self, action_dim: int) -> tuple[float, float] | None:
        """Range of the shaped reward on the toy task's action box ([-1, 1], target 0), if known."""
        if self.cfg.type == "mse":
            low, high = -4.0, 0.0  # worst error 2 per dimension when the target is in [-1, 1]
        elif self.cfg.type == "shaped":
            low, high = 1.0 / (1.0 + 2.0 * np.sqrt(action_dim)), 1.0
        else:
            return None
        ends = sorted(self.cfg.scale * (v + self.cfg.shift) for v in (low, high))
        if self.cfg.clip is not None:
            ends = [float(np.clip(v, *self.cfg.clip)) for v in ends]
        return ends[0], ends[1]


@dataclass(frozen=True)
class LintWarning:
    code: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def lint_config(reward, algo, action_dim: int, shaper: RewardShaper | None = None) -> list[LintWarning]:
    """Warnings knowable before training (the seed's findings 2 and 4, docs/background.md)."""
    warnings = []
    sac = algo.backend in ("lerobot_sac", "sb3_sac")
    bounds = shaper.bounds(action_dim) if shaper is not None else None
    if sac and bounds is not None and bounds[0] >= 0:
        warnings.append(LintWarning(
            "positive-reward",
            f"the shaped reward is never negative (range {bounds[0]:.3g}..{bounds[1]:.3g}); SAC can stall on a "
            "reward that pays random behaviour. Use a penalty form (e.g. reward.shift: -1) or reward.type: mse."))
    if algo.backend == "lerobot_sac" and algo.grad_clip_norm > 0 and abs(reward.scale) >= 100:
        warnings.append(LintWarning(
            "clip-with-large-scale",
            f"grad_clip_norm {algo.grad_clip_norm:g} with reward.scale {reward.scale:g}: clipping caps the critic's "
            "steps, so a large reward scale cannot speed learning up as it does for SB3 SAC. Set grad_clip_norm: 0 "
            "or lower the scale."))
    return warnings


class LiveRewardLint:
    """Warnings from live data: a reward that is never negative, a critic loss that keeps growing."""

    def __init__(self, sac_backend: bool, min_rewards: int = 1000, loss_window: int = 200, growth_windows: int = 4):
        self.sac_backend = sac_backend
        self.min_rewards = min_rewards
        self.loss_window = loss_window
        self.growth_windows = growth_windows
        self.rewards_seen = 0
        self.min_reward = np.inf
        self._losses: list[float] = []
        self._window_means: list[float] = []
        self.active: dict[str, LintWarning] = {}

    def observe_rewards(self, rewards: np.ndarray) -> None:
        if len(rewards) == 0:
            return
        self.rewards_seen += len(rewards)
        self.min_reward = min(self.min_reward, float(np.min(rewards)))
        if self.sac_backend and self.rewards_seen >= self.min_rewards and self.min_reward >= 0:
            self.active["never-negative-reward"] = LintWarning(
                "never-negative-reward",
                f"all {self.rewards_seen} rewards so far are >= 0 (min {self.min_reward:.3g}); SAC may stall on a "
                "bonus for random behaviour")
        else:
            self.active.pop("never-negative-reward", None)

    def observe_critic_loss(self, loss: float) -> None:
        self._losses.append(float(loss))
        if len(self._losses) < self.loss_window:
            return
        self._window_means.append(float(np.mean(self._losses)))
        self._losses.clear()
        recent = self._window_means[-self.growth_windows:]
        growing = (len(recent) == self.growth_windows and all(b > a for a, b in zip(recent, recent[1:]))
                   and recent[-1] > 2.0 * recent[0])
        if growing:
            self.active["critic-loss-growing"] = LintWarning(
                "critic-loss-growing",
                f"the critic loss grew over the last {self.growth_windows} windows of {self.loss_window} updates "
                f"({recent[0]:.3g} -> {recent[-1]:.3g}); check reward scale, discount and learning rates")
        else:
            self.active.pop("critic-loss-growing", None)

    def warnings(self) -> list[LintWarning]:
        return list(self.active.values())
