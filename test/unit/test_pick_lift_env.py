"""PickLiftEnv (gym-hil Panda pick-cube, state only)."""


import numpy as np
import pytest

from kuavo_rl.envs.pick_lift import EE_STEP_M, PickLiftEnv

DIST, GRASP, LIFT, SUCCESS = range(4)


@pytest.fixture(scope="module")
def env():
    e = PickLiftEnv(seed=3, max_episode_steps=100)
    yield e
    e.close()


def check_terms(env, info):
    terms = info["reward_terms"]
    assert terms.dtype == np.float32 and terms.shape == (len(env.reward_term_names),)
    assert np.all(np.isfinite(terms))
    return terms


def test_spaces_and_shapes(env):
    assert env.reward_term_names == ("distance", "grasp", "lift_height", "success")
    assert env.action_space.shape == (4,) and env.action_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape == (21,)
    np.testing.assert_allclose(obs[-3:], env.block_position(), atol=1e-6)
    terms = check_terms(env, info)
    assert terms[LIFT] == pytest.approx(0.0, abs=1e-4) and terms[GRASP] == 0 and terms[SUCCESS] == 0
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs.shape == (21,) and isinstance(reward, float)
    check_terms(env, info)


def test_seed_fixes_block_position(env):
    env.reset(seed=7)
    a = env.block_position()
    env.reset(seed=8)
    b = env.block_position()
    env.reset(seed=7)
    np.testing.assert_allclose(env.block_position(), a)
    assert not np.allclose(a, b)


def move_to(env, target, gripper=0.0, steps=30):
    info, done = None, False
    for _ in range(steps):
        a = np.clip((target - env.tcp_position()) / EE_STEP_M, -1, 1)
        _, reward, terminated, truncated, info = env.step(np.append(a, gripper).astype(np.float32))
        done = terminated or truncated
        if done:
            break
    return info, reward, done


def test_scripted_pick_reduces_distance_then_grasps_and_lifts(env):
    _, info = env.reset(seed=1)
    d0 = check_terms(env, info)[DIST]
    block = env.block_position()
    info, _, _ = move_to(env, block + [0, 0, 0.06])
    d1 = check_terms(env, info)[DIST]
    assert d1 < d0 - 0.05  # moving toward the cube reduces the distance term
    info, _, _ = move_to(env, block)
    info, _, _ = move_to(env, block, gripper=1.0, steps=8)
    terms = check_terms(env, info)
    assert terms[GRASP] == 1.0 and terms[DIST] < 0.02
    info, reward, done = move_to(env, block + [0, 0, 0.2], gripper=1.0)
    terms = check_terms(env, info)
    assert terms[LIFT] > 0.1 and terms[SUCCESS] == 1.0
    assert reward == 1.0 and done  # gym-hil's sparse reward; success terminates


def test_truncates_at_max_episode_steps():
    e = PickLiftEnv(seed=0, max_episode_steps=7)
    e.reset()
    flags = [e.step(np.zeros(4, dtype=np.float32))[2:4] for _ in range(7)]
    assert flags[:-1] == [(False, False)] * 6 and flags[-1] == (False, True)
    e.close()


def test_non_finite_action_is_safe(env):
    env.reset(seed=2)
    obs, *_ , info = env.step(np.array([np.nan, np.inf, -np.inf, 5.0], dtype=np.float32))
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(info["reward_terms"]))
