"""The Kuavo bridge against the simulated Kuavo in-process (the same bridge and simulator code the
nodes run): safety limits under adversarial actions, re-sync after takeovers, reset settle checks,
holding on a lost robot, control modes, reward terms."""
from __future__ import annotations

import numpy as np
import pytest

from kuavo_rl.config import ConfigError, load_config
from kuavo_rl.env_core import EnvStepper
from kuavo_rl.envs import env_spec, make_env
from kuavo_rl.kuavo.bridge import KuavoBridgeEnv, RobotUnavailable
from kuavo_rl.kuavo.link import SimLink
from kuavo_rl.kuavo.model import ARM_JOINT_LOWER, ARM_JOINT_UPPER
from kuavo_rl.kuavo.sim_server import START_MODE
from kuavo_rl.kuavo.task import TEAM_REWARD_WEIGHTS, HandPair, Workspace
from kuavo_rl.protocol import ActionDecision
from kuavo_rl.reward import RewardShaper

CONFIG = "config/kuavo_sim_box_lift.yaml"
TRACKING_SLACK_M = 0.03  # measured hands may trail or overshoot the commanded targets by this much


def kuavo_config(*overrides: str):
    return load_config(CONFIG, ["env.kuavo.link=inprocess", *overrides], pipeline=True)


def bridge(*overrides: str, seed: int = 0) -> KuavoBridgeEnv:
    return make_env(kuavo_config(*overrides).env, seed=seed)


class CuttableLink(SimLink):
    """The simulated Kuavo behind a cable that can be pulled: no state arrives while cut."""

    cut = False

    def latest(self):
        return None if self.cut else super().latest()

    def wait_for_state(self, period_s, timeout_s):
        return None if self.cut else super().wait_for_state(period_s, timeout_s)


def measured(env: KuavoBridgeEnv) -> HandPair:
    return HandPair(env.state.left_hand - env.base, env.state.right_hand - env.base)


@pytest.mark.parametrize("kind", ["saturated", "random"])
def test_adversarial_ee_actions_never_leave_the_workspace(kind):
    env = bridge()
    env.reset()
    rng = np.random.default_rng(1)
    workspace = Workspace(env.cfg)
    slack = Workspace(env.cfg)
    slack.left = (slack.left[0] - TRACKING_SLACK_M, slack.left[1] + TRACKING_SLACK_M)
    slack.right = (slack.right[0] - TRACKING_SLACK_M, slack.right[1] + TRACKING_SLACK_M)
    previous = env.commanded.copy()
    corners = np.array([[1, 1, 1, 1, -1, 1], [-1, -1, -1, -1, 1, -1], [1, -1, 1, 1, 1, -1]], float)
    for step in range(120):
        action = corners[(step // 40) % 3] if kind == "saturated" else rng.uniform(-3, 3, 6)
        env.step(action)
        assert workspace.contains(env.commanded)
        for before, after in ((previous.left, env.commanded.left), (previous.right, env.commanded.right)):
            assert np.linalg.norm(after - before) <= env.cfg.max_hand_step_m + 1e-9
        assert slack.contains(measured(env)), (step, measured(env))
        previous = env.commanded.copy()


def test_nan_and_wrong_size_actions_are_refused_and_nothing_moves():
    env = bridge()
    env.reset()
    before, time_before = env.commanded.copy(), env.link.sim.time
    for bad in (np.full(6, np.nan), np.array([0, 0, np.inf, 0, 0, 0]), np.zeros(5)):
        with pytest.raises(ValueError):
            env.step(bad)
    assert np.array_equal(env.commanded.left, before.left) and env.link.sim.time == time_before


def test_adversarial_joint_actions_respect_limits_and_speed():
    env = bridge("env.kuavo.action_mode=joint", "env.action_dim=14")
    env.reset()
    rng = np.random.default_rng(2)
    low, high = ARM_JOINT_LOWER + env.cfg.joint_limit_margin_rad, ARM_JOINT_UPPER - env.cfg.joint_limit_margin_rad
    previous = env.commanded_q.copy()
    for step in range(80):
        action = np.sign(rng.uniform(-1, 1, 14)) if step % 2 else rng.uniform(-1, 1, 14)
        env.step(action)
        assert np.all(env.commanded_q >= low - 1e-9) and np.all(env.commanded_q <= high + 1e-9)
        assert np.max(np.abs(env.commanded_q - previous)) <= env.cfg.max_joint_step_rad + 1e-9
        q = env.state.arm_q
        assert np.all(q >= ARM_JOINT_LOWER - 0.02) and np.all(q <= ARM_JOINT_UPPER + 0.02), step
        speed = np.abs(env.link.sim.joint_velocities()[12:26])
        assert np.max(speed) <= kuavo_config().env.kuavo_sim.joint_speed_limit_rad_s * 1.5, (step, speed.max())
        previous = env.commanded_q.copy()


def test_reset_waits_until_the_hands_reach_the_start_pose():
    env = bridge()
    for episode in range(3):
        observation, info = env.reset()
        start_error = max(np.linalg.norm(observation[23:26] - env.commanded.left),
                          np.linalg.norm(observation[26:29] - env.commanded.right))
        assert start_error < 1e-6  # re-synced: the commanded targets are the measured hands
        assert Workspace(env.cfg).contains(env.commanded, tolerance=TRACKING_SLACK_M)
        assert info["reward_terms"].shape == (5,)


def test_reset_that_cannot_settle_holds_with_the_reason():
    slow_arms = bridge("env.kuavo.settle_timeout_s=1.0", "env.kuavo_sim.hand_speed_limit_m_s=0.001")
    with pytest.raises(RobotUnavailable, match="did not reach the start pose within 1 s"):
        slow_arms.reset()
    cfg = kuavo_config().env
    link = SimLink(cfg.kuavo, cfg.kuavo_sim, seed=0)
    env = KuavoBridgeEnv(cfg.kuavo, link, seed=0)
    link.set_control_mode = lambda mode: None  # the robot never enters external control: commands are refused
    with pytest.raises(RobotUnavailable, match="refused"):
        env.reset()


def push_palms_into_the_box(env: KuavoBridgeEnv, steps: int = 60) -> None:
    """Drive both palms toward the midline through the box: the box stops them, the targets go on."""
    through = HandPair(np.array([0.33, 0.0, 0.0]), np.array([0.33, 0.0, 0.0]))
    for _ in range(steps):
        error = np.concatenate([through.left - env.commanded.left, through.right - env.commanded.right])
        env.step(np.clip(error / env.cfg.ee_step_m, -1, 1))
    assert measured(env).left[1] - env.commanded.left[1] > 0.05
    assert env.commanded.right[1] - measured(env).right[1] > 0.05


def assert_resynced_on_next_step(env: KuavoBridgeEnv) -> None:
    hands_now = Workspace(env.cfg).clamp(measured(env))
    env.step(np.zeros(6))
    np.testing.assert_allclose(env.commanded.left, hands_now.left, atol=1e-9)  # no jump to the stale target
    np.testing.assert_allclose(env.commanded.right, hands_now.right, atol=1e-9)


def test_takeover_start_and_end_resync_the_target_to_the_measured_hands():
    env = bridge()
    env.reset()
    push_palms_into_the_box(env)  # the policy pushes; the operator takes over from where the hands are
    env.set_intervention(True)
    assert_resynced_on_next_step(env)
    push_palms_into_the_box(env)  # the operator pushes; the policy takes over from where the hands are
    env.set_intervention(False)
    assert_resynced_on_next_step(env)


def test_lost_robot_holds_reports_and_resumes_without_stepping_twice():
    cfg = kuavo_config().env
    link = CuttableLink(cfg.kuavo, cfg.kuavo_sim, seed=0)
    stepper = EnvStepper(KuavoBridgeEnv(cfg.kuavo, link, seed=0))
    stepper.apply(ActionDecision(0, 0, None, reset=True))
    first = stepper.apply(ActionDecision(0, 0, np.full(6, 0.5)))
    link.cut = True
    held = ActionDecision(0, 1, np.full(6, 0.5))
    for _ in range(3):
        with pytest.raises(RobotUnavailable, match="no fresh robot state"):
            stepper.apply(held)
    assert stepper.current is first and stepper.env.holds == 3
    link.cut = False
    second = stepper.apply(held)
    assert (second.episode_id, second.step_index) == (0, 2) and stepper.env.steps_in_episode == 2


def test_each_reset_waits_for_the_operator_when_confirmation_is_on():
    env = bridge("env.kuavo.confirm_reset=true")
    for _ in range(2):
        with pytest.raises(RobotUnavailable, match="waiting for the operator"):
            env.reset()
        assert "confirmed" in env.confirm_reset("operator")
        env.reset()
    assert "off" in bridge().confirm_reset("operator")


def test_control_mode_external_at_start_and_stop_mode_at_close():
    env = bridge()
    assert env.link.mode == START_MODE != env.cfg.external_control_mode  # as the kuavo_sim node starts
    env.reset()
    assert env.link.mode == env.cfg.external_control_mode == 2
    env.close()
    assert env.link.mode == env.cfg.stop_control_mode


def test_team_reward_is_the_weighted_terms_of_the_default_config():
    cfg = kuavo_config()
    env = make_env(cfg.env, seed=3)
    shaper = RewardShaper(cfg.reward, env_spec(cfg.env).reward_term_names)
    assert cfg.reward.weights == TEAM_REWARD_WEIGHTS
    env.reset()
    for _ in range(5):
        _, raw, _, _, info = env.step(np.ones(6))
        assert shaper(info["reward_terms"][None], np.array([raw]))[0] == pytest.approx(raw, rel=1e-5)
    assert raw < 0


def test_bridge_defaults_match_the_simulated_kuavo():
    from kuavo_rl.kuavo import model
    from kuavo_rl.kuavo.settings import KuavoConfig
    cfg = KuavoConfig()
    np.testing.assert_allclose([cfg.workspace_low, cfg.workspace_high], model.HAND_WORKSPACE_BASE["left"])
    np.testing.assert_allclose([cfg.start_low, cfg.start_high], model.HAND_START_BOX_BASE["left"])
    np.testing.assert_allclose(cfg.box_size, model.BOX_SIZE)
    np.testing.assert_allclose(cfg.base_position, model.BASE_POSITION)
    workspace = Workspace(cfg)
    np.testing.assert_allclose(workspace.right, model.HAND_WORKSPACE_BASE["right"])


def test_kuavo_keys_are_checked_at_start_up():
    with pytest.raises(ConfigError, match="unknown key 'env.kuavo.step_size'"):
        kuavo_config("env.kuavo.step_size=0.02")
    with pytest.raises(ConfigError, match="observation_layout: unknown blocks"):
        kuavo_config("env.kuavo.observation_layout=[hand_left_world, camera]")
    with pytest.raises(ConfigError, match="has a 14-dim action"):
        kuavo_config("env.kuavo.action_mode=joint")
    with pytest.raises(ConfigError, match="env.timing must be lockstep"):
        kuavo_config("env.timing=realtime")
    with pytest.raises(ConfigError, match="raise max_hand_step_m to at least 0.03464"):
        kuavo_config("env.kuavo.ee_step_m=0.02")  # a diagonal step the speed limit would cut
    assert kuavo_config("env.kuavo.ee_step_m=0.02", "env.kuavo.max_hand_step_m=0.035").env.kuavo.ee_step_m == 0.02
    layout = kuavo_config("env.kuavo.observation_layout=[hand_left_base, hand_right_base, box_position, box_yaw]")
    assert env_spec(layout.env).observation_dim == 10
