"""The Kuavo as a gymnasium env: the bridge between the env-node protocol and a `RobotLink`.

Safety first, whatever the policy or the operator outputs:
- every command is clamped to the workspace (hands) or the joint limits, and to a per-step speed limit;
- the commanded hand target is re-synced to the measured hands at reset, when a takeover starts or
  ends and when stepping resumes after a hold, so the arms never jump to a stale target (the first
  step after a re-sync of a hand outside the workspace brings its target back inside, which can
  exceed the speed limit by that excursion);
- reset waits until the hands report they reached the start pose (tolerance, timeout), never a fixed sleep;
- no fresh robot state, a refused command or a failed service call: the bridge sends nothing more
  (the robot's controller holds its last target), raises `RobotUnavailable` with the reason, and the
  caller retries the same step; nothing is stepped twice.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from kuavo_rl import topics
from kuavo_rl.env_core import EnvUnavailable
from kuavo_rl.kuavo.link import LinkError, RobotLink
from kuavo_rl.kuavo.settings import KuavoConfig, layout_size
from kuavo_rl.kuavo.task import (REWARD_TERM_NAMES, HandPair, Outcome, RobotState, TaskJudge, Workspace,
                                 assemble_observation, limit_step, next_hand_targets, next_joint_targets,
                                 observation_names, sample_start)


class RobotUnavailable(EnvUnavailable):
    """The robot cannot step now; the bridge holds. Retry the same call later."""


def action_dim_of(cfg: KuavoConfig) -> int:
    return 6 if cfg.action_mode == "ee_delta" else 14


class KuavoBridgeEnv(gym.Env):
    metadata = {"render_modes": []}
    reward_term_names = REWARD_TERM_NAMES

    def __init__(self, cfg: KuavoConfig, link: RobotLink, episode_steps: int = 200, seed: int | None = None,
                 log=lambda message: None):
        from kuavo_rl.kuavo import model  # joint names and limits (MuJoCo-free module constants)
        self.cfg, self.link, self.episode_steps, self.log = cfg, link, int(episode_steps), log
        self.workspace = Workspace(cfg)
        self.base = np.asarray(cfg.base_position, float)
        self.joint_lower, self.joint_upper = np.asarray(model.ARM_JOINT_LOWER), np.asarray(model.ARM_JOINT_UPPER)
        self.quats = HandPair(np.asarray(cfg.hand_quat_left or model.DEFAULT_HAND_QUAT_XYZW["left"], float),
                              np.asarray(cfg.hand_quat_right or model.DEFAULT_HAND_QUAT_XYZW["right"], float))
        self.observation_names = observation_names(cfg.observation_layout, tuple(model.ARM_JOINT_NAMES))
        obs_dim = layout_size(cfg.observation_layout)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim_of(cfg),), np.float32)
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self.started = False
        self.state: RobotState | None = None
        self.commanded: HandPair | None = None  # hand targets, base frame
        self.commanded_q: np.ndarray | None = None  # joint mode
        self.judge: TaskJudge | None = None
        self.steps_in_episode = 0
        self.intervening = False
        self._step_sent = False  # the current step's command went out; a retry only waits for its state
        # Re-sync the commanded targets to the measured hands before the next command: a takeover
        # started or ended (the new driver starts from where the hands are), or stepping resumes after a hold.
        self._resync_pending = False
        self._awaited_stamp = -np.inf  # the robot-clock stamp of the state that shows the last command's effect
        self.holds = 0  # how often the bridge had to hold (stale state, refused command)
        self._reset_confirmed = False

    # ---- gym API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._start()
        if self.cfg.confirm_reset and not self._reset_confirmed:
            self._hold("waiting for the operator to confirm the scene is ready (the box on the table): "
                       f"call {topics.CONFIRM_RESET}")
        self._awaited_stamp = -np.inf  # the newest complete state
        if self.cfg.scene_reset_service:
            before = self.link.newest_stamp()
            self._call(self.link.reset_scene, self._seed_for_scene())
            self._awaited_stamp = before + 1e-6  # a state of the new scene
        state = self._move_hands_to(sample_start(self.cfg, self._rng, self.workspace), self._next_state())
        self._resync(state)
        self.judge = TaskJudge(self.cfg, state.box_position)
        self._reset_confirmed = False  # the next episode needs its own confirmation
        self.steps_in_episode, self._step_sent, self.intervening, self._resync_pending = 0, False, False, False
        return self._observe(state), {"reward_terms": self.judge.judge(state).terms}

    def step(self, action):
        if self.judge is None:
            raise RuntimeError("step() before reset()")
        action = self._checked(action)
        if not self._step_sent:
            if self._resync_pending:
                self._resync(self.state)
            self._command(action)
            self._step_sent = True
        state = self._next_state()
        self._step_sent = False
        self.steps_in_episode += 1
        outcome = self.judge.judge(state)
        terminated = outcome.success or outcome.failure
        truncated = not terminated and self.steps_in_episode >= self.episode_steps
        info = {"reward_terms": outcome.terms, "success": outcome.success, "failure": outcome.failure}
        return self._observe(state), outcome.team_reward, terminated, truncated, info

    @staticmethod
    def reward_from_terms(terms: np.ndarray) -> float:
        """The raw reward of `terms` (an operator's label sets the success/failure term after the step)."""
        return Outcome(np.asarray(terms, np.float32), False, False).team_reward

    def confirm_reset(self, operator: str) -> str:
        """The operator says the scene is ready: the next (or the waiting) reset goes ahead."""
        self._reset_confirmed = True
        self.log(f"scene confirmed ready by {operator or 'an operator'}")
        return "confirmed: the next reset moves the hands to the start pose" if self.cfg.confirm_reset else \
            "noted (env.kuavo.confirm_reset is off: resets do not wait for a confirmation)"

    def set_intervention(self, active: bool) -> None:
        """The env-node protocol says whether the next action is an operator's takeover."""
        if self.intervening != bool(active):
            self._resync_pending = True  # cleared only by the re-sync (a retried step calls this again)
        self.intervening = bool(active)

    def close(self) -> None:
        """Back to the stop control mode (the robot keeps its pose); the link closes last."""
        try:
            if self.started:
                self.started = False
                self.link.set_control_mode(self.cfg.stop_control_mode)
        except Exception as error:  # noqa: BLE001 - closing must finish
            self.log(f"could not set control mode {self.cfg.stop_control_mode} at stop: {error}")
        finally:
            self.link.close()

    # ---- commands ------------------------------------------------------------------------------
    def _checked(self, action) -> np.ndarray:
        action = np.asarray(action, np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action has shape {action.shape}, expected {self.action_space.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError("action contains NaN or inf; the robot holds")
        return np.clip(action, -1.0, 1.0)

    def _command(self, action: np.ndarray) -> None:
        self._await_next_period()
        if self.cfg.action_mode == "ee_delta":
            self.commanded = next_hand_targets(self.commanded, action, self.cfg, self.workspace)
            self._send_hands()
        else:
            self.commanded_q = next_joint_targets(self.commanded_q, action, self.joint_lower, self.joint_upper, self.cfg)
            self._call(self.link.send_joint_targets, self.commanded_q)

    def _send_hands(self) -> None:
        hands = self.commanded if self.cfg.command_frame == 2 else HandPair(self.commanded.left + self.base,
                                                                            self.commanded.right + self.base)
        self._call(self.link.send_hand_targets, hands, self.quats, self.cfg.command_frame)

    def _await_next_period(self) -> None:
        """Taken before a command goes out: a reply that arrives before we start waiting still counts."""
        self._awaited_stamp = self.link.newest_stamp() + self.cfg.control_period_s

    def _call(self, function, *args) -> None:
        try:
            function(*args)
        except LinkError as error:
            self._hold(f"the robot refused: {error}")

    def _resync(self, state: RobotState) -> None:
        """The commanded targets become what the robot measures (nothing to jump back to)."""
        self.commanded = HandPair(state.left_hand - self.base, state.right_hand - self.base)
        self.commanded_q = np.clip(state.arm_q, self.joint_lower, self.joint_upper)
        self._resync_pending = False

    # ---- states --------------------------------------------------------------------------------
    def _next_state(self) -> RobotState:
        state = self.link.wait_for_state(self._awaited_stamp, self.cfg.stale_timeout_s)
        if state is None:
            self._hold(f"no fresh robot state within {self.cfg.stale_timeout_s:g} s")
        self.state = state
        return state

    def _hold(self, reason: str):
        self.holds += 1
        self._resync_pending = True
        raise RobotUnavailable(f"holding: {reason}")

    def _start(self) -> None:
        if not self.started:
            if self.link.latest() is None and self.link.wait_for_state(-np.inf, self.cfg.stale_timeout_s) is None:
                self._hold("no robot state yet (is the robot or kuavo_sim running?)")
            self._call(self.link.set_control_mode, self.cfg.external_control_mode)
            self.started = True

    def _move_hands_to(self, start: HandPair, state: RobotState) -> RobotState:
        """Drive the hands from where they are (`state`) to the start pose at the speed limit; done when
        both are within tolerance."""
        self._resync(state)
        deadline = state.stamp + self.cfg.settle_timeout_s
        while True:
            self.commanded = HandPair(limit_step(self.commanded.left, start.left, self.cfg.max_hand_step_m),
                                      limit_step(self.commanded.right, start.right, self.cfg.max_hand_step_m))
            self._await_next_period()
            self._send_hands()
            state = self._next_state()
            errors = (np.linalg.norm(state.left_hand - self.base - start.left),
                      np.linalg.norm(state.right_hand - self.base - start.right))
            if max(errors) <= self.cfg.settle_tolerance_m:
                return state
            if state.stamp > deadline:
                self._hold(f"the hands did not reach the start pose within {self.cfg.settle_timeout_s:g} s "
                           f"(left {errors[0] * 100:.1f} cm, right {errors[1] * 100:.1f} cm away)")

    def _observe(self, state: RobotState) -> np.ndarray:
        return assemble_observation(self.cfg.observation_layout, state, self.base, self.commanded)

    def _seed_for_scene(self) -> int:
        return int(self._rng.integers(0, 2**31 - 1))
