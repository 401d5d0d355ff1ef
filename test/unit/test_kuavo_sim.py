"""The simulated Kuavo upper body: model, kinematics, simulator limits, and the scripted box lift."""

import math

import mujoco
import numpy as np
import pytest

from kuavo_rl.kuavo.kinematics import ArmKinematics
from kuavo_rl.kuavo.model import (ARM_JOINT_LOWER, ARM_JOINT_NAMES, ARM_JOINT_SLICE, ARM_JOINT_UPPER, BASE_POSITION,
                                  BOX_NOMINAL_POSITION, BOX_SIZE, DEFAULT_HAND_QUAT_XYZW, HAND_START_BOX_BASE,
                                  HAND_WORKSPACE_BASE, HOME_ARM_Q, NUM_JOINTS, build_mjcf, load_model)
from kuavo_rl.kuavo.scripted import ScriptedBoxLift
from kuavo_rl.kuavo.sim import KuavoSim, SimConfig

PERIOD = 0.1
STEP_SIZE_M = 0.01
LIFT_SUCCESS_M = 0.10
HELD_STEPS_FOR_SUCCESS = 10  # the lifted box must stay held for 1 s, not just pass the height


@pytest.fixture(scope="module")
def sim():
    return KuavoSim(seed=0)


@pytest.fixture(scope="module")
def kin(sim):
    return ArmKinematics(sim.model)


# -- the box-lift harness: ScriptedBoxLift plays the env's role in-process -----------------------------
def observation(sim: KuavoSim) -> np.ndarray:
    hands = sim.hand_poses()
    box, _ = sim.box_pose()
    return np.concatenate([hands.left_pos, hands.right_pos, sim.joint_positions()[ARM_JOINT_SLICE], BASE_POSITION,
                           hands.left_pos - BASE_POSITION, hands.right_pos - BASE_POSITION, box]).astype(np.float32)


def clamp_to_workspace(targets: np.ndarray) -> np.ndarray:
    return np.stack([np.clip(targets[i], BASE_POSITION + low, BASE_POSITION + high)
                     for i, (low, high) in enumerate((HAND_WORKSPACE_BASE["left"], HAND_WORKSPACE_BASE["right"]))])


def sample_start_pose(rng: np.random.Generator) -> np.ndarray:
    """The suggested start range (base frame), clamped to HAND_START_BOX_BASE (what the arms reach)."""
    starts = []
    for name, y_sign in (("left", 1.0), ("right", -1.0)):
        suggested = np.array([rng.uniform(0.2, 0.5), y_sign * rng.uniform(0.3, 0.6), rng.uniform(-0.05, 0.3)])
        starts.append(BASE_POSITION + np.clip(suggested, *HAND_START_BOX_BASE[name]))
    return np.stack(starts)


def hands_hold_box(sim: KuavoSim, face_tolerance_m: float = 0.02) -> bool:
    """Both palms on the box's side faces (in the box frame: within its x, z extent, at its y faces)."""
    box, quat_xyzw = sim.box_pose()
    rotation = np.empty(9)
    mujoco.mju_quat2Mat(rotation, np.array([quat_xyzw[3], *quat_xyzw[:3]]))
    hands = sim.hand_poses()
    half = BOX_SIZE / 2
    for hand in (hands.left_pos, hands.right_pos):
        local = rotation.reshape(3, 3).T @ (hand - box)
        if abs(local[0]) > half[0] or abs(local[2]) > half[2] or abs(abs(local[1]) - half[1]) > face_tolerance_m:
            return False
    return True


def run_box_lift_episode(sim: KuavoSim, seed: int, controller: ScriptedBoxLift | None = None,
                         max_steps: int = 200) -> tuple[bool, str]:
    """One episode: random scene and start pose, then the scripted controller for max_steps steps."""
    rng = np.random.default_rng(seed)
    sim.reset_scene(seed=seed)
    start = sample_start_pose(rng)
    for _ in range(100):  # move to the start pose; wait until both hands are within 2 cm
        sim.set_hand_targets(start[0], start[1])
        sim.advance(PERIOD)
        hands = sim.hand_poses()
        if max(np.linalg.norm(hands.left_pos - start[0]), np.linalg.norm(hands.right_pos - start[1])) < 0.02:
            break
    else:
        return False, "start pose not reached"
    controller = controller or ScriptedBoxLift()
    controller.reset()
    obs = observation(sim)
    box_start_z = sim.box_pose()[0][2]
    targets = obs[:6].astype(np.float64).reshape(2, 3)  # the commanded targets start at the measured hands
    held_steps, best_lift = 0, 0.0
    for step in range(max_steps):
        action = controller(obs)
        assert action.shape == (6,) and np.all(np.abs(action) <= 1.0)
        targets = clamp_to_workspace(targets + STEP_SIZE_M * action.reshape(2, 3).astype(np.float64))
        sim.set_hand_targets(targets[0], targets[1])
        sim.advance(PERIOD)
        obs = observation(sim)
        lift = sim.box_pose()[0][2] - box_start_z
        best_lift = max(best_lift, lift)
        held_steps = held_steps + 1 if lift >= LIFT_SUCCESS_M and hands_hold_box(sim) else 0
        if held_steps >= HELD_STEPS_FOR_SUCCESS:
            return True, f"held at step {step}"
    return False, (f"phase {controller.phase}, best lift {best_lift:.3f} m, box mass {sim.box_mass:.2f} kg, "
                   f"friction {sim.box_friction:.2f}")


# -- model ------------------------------------------------------------------------------------------
def test_model_constants_and_mirrored_right_arm():
    assert len(ARM_JOINT_NAMES) == 14
    assert ARM_JOINT_NAMES[0] == "zarm_l1_joint" and ARM_JOINT_NAMES[7] == "zarm_r1_joint"
    assert NUM_JOINTS == 28 and ARM_JOINT_SLICE == slice(12, 26)
    assert np.all(ARM_JOINT_LOWER < ARM_JOINT_UPPER)
    assert np.all(HOME_ARM_Q >= ARM_JOINT_LOWER) and np.all(HOME_ARM_Q <= ARM_JOINT_UPPER)
    left, right = slice(0, 7), slice(7, 14)
    pitch, roll_yaw = [0, 3, 6], [1, 2, 4, 5]
    np.testing.assert_allclose(ARM_JOINT_LOWER[right][pitch], ARM_JOINT_LOWER[left][pitch])
    np.testing.assert_allclose(ARM_JOINT_LOWER[right][roll_yaw], -ARM_JOINT_UPPER[left][roll_yaw])
    model = load_model()
    assert model.body("base_link").pos.tolist() == BASE_POSITION.tolist()
    assert model.nu == 14
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.body("box").xpos, BOX_NOMINAL_POSITION)
    assert data.site("left_eef").xpos[1] > 0 > data.site("right_eef").xpos[1]


def test_user_mjcf_path_is_loaded_and_checked(tmp_path):
    good = tmp_path / "kuavo.xml"
    good.write_text(build_mjcf(box_mass=1.5))
    assert load_model(str(good)).body("box").mass[0] == pytest.approx(1.5)
    bad = tmp_path / "no_site.xml"
    bad.write_text(build_mjcf().replace('name="left_eef"', 'name="elsewhere"'))
    with pytest.raises(ValueError, match="left_eef"):
        load_model(str(bad))
    sim = KuavoSim(SimConfig(model_path=str(good)), seed=1)
    assert sim.joint_positions().shape == (NUM_JOINTS,)


# -- kinematics -------------------------------------------------------------------------------------
def test_ik_reaches_reachable_targets(kin):
    rng = np.random.default_rng(0)
    targets = [kin.fk(np.clip(HOME_ARM_Q + rng.uniform(-0.5, 0.5, 14), ARM_JOINT_LOWER, ARM_JOINT_UPPER))
               for _ in range(10)]
    for poses in targets:
        q, converged, error = kin.ik(poses.left_pos, poses.right_pos, poses.left_quat_xyzw, poses.right_quat_xyzw,
                                     HOME_ARM_Q)
        reached = kin.fk(q)
        assert converged and error < 0.005
        assert np.linalg.norm(reached.left_pos - poses.left_pos) < 0.005
        assert np.linalg.norm(reached.right_pos - poses.right_pos) < 0.005
        assert np.all(q >= ARM_JOINT_LOWER) and np.all(q <= ARM_JOINT_UPPER)


def test_ik_reaches_start_box_corners_and_lift_with_the_default_orientation(kin):
    """Every corner of the start box, and grasp/lift points for the box moved +-3 cm."""
    low, high = HAND_START_BOX_BASE["left"]
    points = [np.array([x, y, z]) for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
    box = BOX_NOMINAL_POSITION - BASE_POSITION
    points += [box + [dx, BOX_SIZE[1] / 2 - 0.04 + dy, dz] for dx in (-0.03, 0.03) for dy in (-0.03, 0.03)
               for dz in (0.02, 0.17)]
    for p in points:
        left, right = BASE_POSITION + p, BASE_POSITION + p * [1, -1, 1]
        q, converged, error = kin.ik(left, right, DEFAULT_HAND_QUAT_XYZW["left"], DEFAULT_HAND_QUAT_XYZW["right"],
                                     HOME_ARM_Q)
        assert converged and error < 0.005, p


def test_ik_reports_unreachable_targets_and_stays_within_limits(kin):
    far = BASE_POSITION + [1.5, 0.3, 0.0]
    q, converged, error = kin.ik(far, far * [1, -1, 1], DEFAULT_HAND_QUAT_XYZW["left"],
                                 DEFAULT_HAND_QUAT_XYZW["right"], HOME_ARM_Q)
    assert not converged and error > 0.5
    assert np.all(q >= ARM_JOINT_LOWER) and np.all(q <= ARM_JOINT_UPPER)
    # Hands crossed behind the back: shoulder roll and elbow end at their limits, the others work on.
    crossed = BASE_POSITION + [-0.3, -0.2, 0.3]
    q, converged, error = kin.ik(crossed, crossed * [1, -1, 1], [0, 0, 0, 1], [0, 0, 0, 1], HOME_ARM_Q)
    assert not converged and error > 0.1
    assert np.all(q >= ARM_JOINT_LOWER) and np.all(q <= ARM_JOINT_UPPER)
    assert np.any(np.isclose(q, ARM_JOINT_LOWER) | np.isclose(q, ARM_JOINT_UPPER))


def test_fk_of_measured_joints_equals_hand_poses(sim, kin):
    sim.reset_scene(seed=3)
    sim.set_joint_targets(HOME_ARM_Q + 0.3)
    sim.advance(0.35)
    measured, computed = sim.hand_poses(), kin.fk(sim.joint_positions()[ARM_JOINT_SLICE])
    np.testing.assert_allclose(computed.left_pos, measured.left_pos, atol=1e-9)
    np.testing.assert_allclose(computed.right_pos, measured.right_pos, atol=1e-9)
    for a, b in ((computed.left_quat_xyzw, measured.left_quat_xyzw),
                 (computed.right_quat_xyzw, measured.right_quat_xyzw)):
        assert abs(np.dot(a, b)) == pytest.approx(1.0, abs=1e-9)  # q and -q are the same rotation


# -- simulator limits and commands ------------------------------------------------------------------
def test_joint_limits_respected_under_random_and_saturated_targets(sim):
    sim.reset_scene(seed=4)
    rng = np.random.default_rng(4)
    commands = [rng.uniform(-10, 10, 14) for _ in range(3)] + [ARM_JOINT_UPPER + 5, ARM_JOINT_LOWER - 5]
    for command in commands:
        sim.set_joint_targets(command)
        for _ in range(8):
            sim.advance(PERIOD)
            q = sim.joint_positions()[ARM_JOINT_SLICE]
            setpoints = sim.arm_joint_targets()
            assert np.all(setpoints >= ARM_JOINT_LOWER) and np.all(setpoints <= ARM_JOINT_UPPER)
            assert np.all(q >= ARM_JOINT_LOWER - 0.02) and np.all(q <= ARM_JOINT_UPPER + 0.02)  # soft limits


def test_joint_speed_limit_respected(sim):
    sim.reset_scene(seed=5)
    limit = sim.cfg.joint_speed_limit_rad_s
    sim.set_joint_targets(ARM_JOINT_LOWER)  # far from home on most joints
    before = sim.arm_joint_targets()
    fastest = 0.0
    for _ in range(10):
        sim.advance(PERIOD)
        after = sim.arm_joint_targets()
        assert np.all(np.abs(after - before) <= limit * PERIOD + 1e-9)
        before = after
        fastest = max(fastest, float(np.max(np.abs(sim.joint_velocities()))))
    assert 0.5 * limit < fastest < 1.25 * limit  # the joints track the ramp, without overshooting much


def test_hand_target_speed_limit_and_preemption(sim, kin):
    sim.reset_scene(seed=6)
    goal_left = BASE_POSITION + [0.25, 0.40, 0.20]
    goal_right = BASE_POSITION + [0.25, -0.40, 0.20]
    step = sim.cfg.hand_speed_limit_m_s * PERIOD
    sim.set_hand_targets(goal_left, goal_right)
    previous = kin.fk(sim.arm_joint_targets())
    for _ in range(20):
        sim.advance(PERIOD)
        commanded = kin.fk(sim.arm_joint_targets())
        for a, b in ((commanded.left_pos, previous.left_pos), (commanded.right_pos, previous.right_pos)):
            assert np.linalg.norm(a - b) <= step + 0.002  # + IK tolerance
        previous = commanded
    assert sim.last_ik_converged
    assert np.linalg.norm(sim.hand_poses().left_pos - goal_left) < 0.01
    sim.set_joint_targets(HOME_ARM_Q)  # a joint command preempts the hand target ...
    sim.advance(2.0)
    np.testing.assert_allclose(sim.arm_joint_targets(), HOME_ARM_Q, atol=1e-9)
    sim.set_hand_targets(goal_left, goal_right)  # ... and a hand command preempts it back
    sim.advance(2.0)
    assert np.linalg.norm(sim.hand_poses().right_pos - goal_right) < 0.01


def test_bad_commands_raise_and_change_nothing(sim):
    sim.reset_scene(seed=7)
    targets = sim.arm_joint_targets()
    with pytest.raises(ValueError, match="NaN"):
        sim.set_joint_targets(np.full(14, np.nan))
    with pytest.raises(ValueError, match="14"):
        sim.set_joint_targets(np.zeros(13))
    with pytest.raises(ValueError, match="NaN"):
        sim.set_hand_targets([0.3, np.inf, 1.0], [0.3, -0.3, 1.0])
    with pytest.raises(ValueError, match="3"):
        sim.set_hand_targets([0.3, 0.3], [0.3, -0.3, 1.0])
    with pytest.raises(ValueError):
        sim.set_hand_targets([0.3, 0.3, 1.0], [0.3, -0.3, 1.0], left_quat_xyzw=[0, 0, 0, np.nan])
    with pytest.raises(ValueError):
        sim.advance(float("nan"))
    sim.advance(PERIOD)
    np.testing.assert_array_equal(sim.arm_joint_targets(), targets)


def test_reset_scene_randomises_within_ranges_and_is_reproducible():
    cfg = SimConfig()
    sim, twin = KuavoSim(cfg, seed=11), KuavoSim(cfg, seed=99)  # the reset seed alone decides the scene
    positions, masses = [], []
    for seed in range(12):
        sim.reset_scene(seed=seed)
        position, quat_xyzw = sim.box_pose()
        yaw = 2 * math.atan2(quat_xyzw[2], quat_xyzw[3])
        assert np.all(np.abs(position[:2] - BOX_NOMINAL_POSITION[:2]) <= cfg.box_position_jitter_m + 1e-12)
        assert position[2] == pytest.approx(BOX_NOMINAL_POSITION[2])
        assert abs(yaw) <= cfg.box_yaw_jitter_rad + 1e-12
        box_mass = sim.model.body("box").mass[0]
        assert cfg.box_mass_range[0] <= box_mass <= cfg.box_mass_range[1] and box_mass == sim.box_mass
        assert cfg.box_friction_range[0] <= sim.model.geom("box").friction[0] <= cfg.box_friction_range[1]
        np.testing.assert_array_equal(sim.joint_positions()[ARM_JOINT_SLICE], HOME_ARM_Q)
        np.testing.assert_array_equal(sim.arm_joint_targets(), HOME_ARM_Q)
        twin.reset_scene(seed=seed)
        np.testing.assert_array_equal(twin.box_pose()[0], position)
        assert twin.box_mass == sim.box_mass and twin.box_friction == sim.box_friction
        positions.append(position)
        masses.append(box_mass)
    assert np.ptp(np.array(positions)[:, 0]) > 0.02 and np.ptp(masses) > 0.5  # really random
    sim.reset_scene()  # unseeded resets continue the stream of the last seed, identically in both
    twin.reset_scene()
    np.testing.assert_array_equal(twin.box_pose()[0], sim.box_pose()[0])


# -- the scripted controller ------------------------------------------------------------------------
def test_scripted_controller_checks_its_input():
    controller = ScriptedBoxLift()
    with pytest.raises(ValueError, match="32"):
        controller(np.zeros(31))
    assert controller.phase == "pregrasp"


def test_scripted_box_lift_succeeds_from_random_starts(sim):
    results = [run_box_lift_episode(sim, seed) for seed in range(10)]
    successes = sum(ok for ok, _ in results)
    assert successes >= 9, results
