import numpy as np
import pytest

from kuavo_rl.config import AlgoConfig, RewardConfig
from kuavo_rl.envs.toy import TargetActionEnv
from kuavo_rl.reward import LiveRewardLint, RewardShaper, lint_config

TERMS = TargetActionEnv.reward_term_names


def shaped(cfg: RewardConfig, action, target=0.0, raw=0.0):
    env = TargetActionEnv(len(action), target)
    terms = env.reward_terms(np.asarray(action, np.float32))[None]
    return float(RewardShaper(cfg, TERMS)(terms, np.array([raw]))[0])


def test_reward_types_match_their_formulas():
    a = [0.6, -0.8]
    assert shaped(RewardConfig(type="mse"), a) == pytest.approx(-(0.36 + 0.64) / 2)
    assert shaped(RewardConfig(type="shaped"), a) == pytest.approx(1 / (1 + 1.0))
    assert shaped(RewardConfig(type="env"), a, raw=-3.5) == pytest.approx(-3.5)
    assert shaped(RewardConfig(type="mse"), [0.5, 0.5], target=0.5) == pytest.approx(0.0)


def test_shift_scale_and_clip_apply_in_order():
    a = [0.6, -0.8]  # shaped base 0.5
    assert shaped(RewardConfig(type="shaped", shift=-1.0), a) == pytest.approx(-0.5)
    assert shaped(RewardConfig(type="shaped", shift=-1.0, scale=100.0), a) == pytest.approx(-50.0)
    assert shaped(RewardConfig(type="shaped", shift=-1.0, scale=100.0, clip=[-10.0, 10.0]), a) == pytest.approx(-10.0)


def test_env_raw_reward_equals_mse_shaping():
    env = TargetActionEnv(6, 0.3, seed=0)
    env.reset(seed=0)
    action = env.action_space.sample()
    _, raw, _, _, info = env.step(action)
    assert raw == pytest.approx(shaped(RewardConfig(type="mse"), action, target=0.3), rel=1e-5)


def test_missing_reward_terms_are_refused():
    with pytest.raises(ValueError, match="needs reward terms"):
        RewardShaper(RewardConfig(type="mse"), ("distance", "lift_height"))


def test_weighted_terms():
    shaper = RewardShaper(RewardConfig(type="weighted_terms", weights={"distance": -1.0, "lift": 10.0}),
                          ("distance", "lift"))
    assert shaper(np.array([[0.2, 0.05]]), np.array([0.0]))[0] == pytest.approx(-0.2 + 0.5)


def test_config_lint_flags_positive_reward_and_clipping_with_large_scale():
    positive = lint_config(RewardConfig(type="shaped"), AlgoConfig(), 6, RewardShaper(RewardConfig(type="shaped"), TERMS))
    assert [w.code for w in positive] == ["positive-reward"]
    penalty = RewardConfig(type="shaped", shift=-1.0)
    assert lint_config(penalty, AlgoConfig(), 6, RewardShaper(penalty, TERMS)) == []
    scaled = RewardConfig(type="mse", scale=100.0)
    codes = [w.code for w in lint_config(scaled, AlgoConfig(grad_clip_norm=40.0), 14, RewardShaper(scaled, TERMS))]
    assert codes == ["clip-with-large-scale"]
    assert lint_config(scaled, AlgoConfig(grad_clip_norm=0.0), 14, RewardShaper(scaled, TERMS)) == []


def test_live_lint_never_negative_reward_and_growing_critic_loss():
    lint = LiveRewardLint(sac_backend=True, min_rewards=100, loss_window=10, growth_windows=3)
    lint.observe_rewards(np.full(99, 0.5))
    assert lint.warnings() == []
    lint.observe_rewards(np.full(1, 0.5))
    assert [w.code for w in lint.warnings()] == ["never-negative-reward"]
    lint.observe_rewards(np.array([-0.1]))
    assert lint.warnings() == []
    for window in range(3):
        for _ in range(10):
            lint.observe_critic_loss(10.0 ** window)
    assert [w.code for w in lint.warnings()] == ["critic-loss-growing"]
    for _ in range(30):
        lint.observe_critic_loss(0.01)
    assert lint.warnings() == []
