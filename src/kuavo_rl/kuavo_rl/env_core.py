"""The env side of the env-node protocol without ROS: reset/step a gymnasium env by
(episode_id, step_index), refusing actions that answer a different step.

An env that drives a robot may raise `EnvUnavailable` from reset() or step() (it holds; nothing was
stepped): the stepper's state is then unchanged and the same call can be retried."""
from __future__ import annotations

import numpy as np

from kuavo_rl.protocol import LABEL_FAILURE, LABEL_NAMES, LABEL_NONE, LABEL_SUCCESS, ActionDecision, StepObservation


class EnvUnavailable(RuntimeError):
    """The env cannot reset or step now (a robot without fresh state, a refused command); it holds.
    The message says why; retry the same call."""


class HoldReport:
    """Log lines for a hold: when it starts or its reason changes, every `every_s` while it lasts,
    and when stepping resumes (with how long it held)."""

    def __init__(self, every_s: float = 5.0):
        self.every_s = every_s
        self.reason: str | None = None
        self.since = self.last_said = 0.0

    def hold(self, reason: str, now: float) -> str | None:
        if reason != self.reason:
            self.since = now if self.reason is None else self.since
            self.reason, self.last_said = reason, now
            return reason
        if now - self.last_said >= self.every_s:
            self.last_said = now
            return f"{reason} (holding for {now - self.since:.1f} s)"
        return None

    def resume(self, now: float) -> str | None:
        if self.reason is None:
            return None
        held, self.reason = now - self.since, None
        return f"resumed after holding for {held:.1f} s"


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
        obs, info = self.env.reset(seed=self.seed if self.episode_id == -1 else None)
        self.episode_id += 1
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
        if hasattr(self.env, "set_intervention"):  # a robot bridge re-syncs its targets when a takeover starts or ends
            self.env.set_intervention(decision.intervention)
        obs, reward, terminated, truncated, info = self.env.step(decision.action)
        self.steps += 1
        terms = np.asarray(info["reward_terms"], np.float32)
        if decision.label != LABEL_NONE:
            terms, reward = self.labelled(terms, float(reward), decision.label)
            terminated, truncated = True, False
        self.current = StepObservation(self.episode_id, self.current.step_index + 1, np.asarray(obs, np.float32),
                                       terms, float(reward), bool(terminated), bool(truncated))
        return self.current

    def labelled(self, terms: np.ndarray, reward: float, label: int) -> tuple[np.ndarray, float]:
        """The operator's label ends the episode: its success/failure reward terms (where the env has
        them) say so, and so does the env's raw reward when it can be recomputed from the terms."""
        if label not in (LABEL_SUCCESS, LABEL_FAILURE):
            raise ValueError(f"label {label} is not one of {sorted(LABEL_NAMES)}")
        terms = terms.copy()
        for name, value in (("success", label == LABEL_SUCCESS), ("failure", label == LABEL_FAILURE)):
            if name in self.reward_term_names:
                terms[self.reward_term_names.index(name)] = float(value)
        if hasattr(self.env, "reward_from_terms"):
            reward = float(self.env.reward_from_terms(terms))
        return terms, reward
