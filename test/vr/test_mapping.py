import numpy as np
import pytest

from helpers.vr_frames import frame, hand
from kuavo_vr_teleop.controller import ControllerFrame
from kuavo_vr_teleop.mapping import (
    EndEffectorDeltaMapping,
    KuavoArmsCommand,
    KuavoArmsMapping,
    ToyAxesMapping,
    TwoHandDeltaMapping,
    make_mapping,
    matrix_to_quat,
    quat_to_matrix,
)

REF = frame(0.0, hand((0.1, 1.0, -0.2)), hand((-0.1, 1.0, -0.2)))


def test_ee_delta_axes_scale_and_gripper():
    m = EndEffectorDeltaMapping(metres_per_unit=0.05)
    assert np.all(m(REF, REF) == m.neutral)
    # OpenXR: -z forward, +x right, +y up  ->  robot: +x forward, +y left, +z up.
    cur = frame(0.1, hand((0.1 - 0.025, 1.0 + 0.01, -0.2 - 0.05)), REF.left)
    np.testing.assert_allclose(m(REF, cur), [1.0, 0.5, 0.2, 0.0], atol=1e-6)
    far = frame(0.1, hand((5.0, -5.0, 5.0), trigger=0.9), REF.left)
    a = m(REF, far)
    assert a.dtype == np.float32 and np.all(np.abs(a) <= 1.0) and a[3] == 1.0
    opening = frame(0.1, REF.right, hand(trigger=0.9))
    assert m(REF, opening)[3] == -1.0


def test_kuavo_ee_delta_moves_each_hand_with_its_own_controller():
    m = make_mapping("kuavo_ee_delta", 6, metres_per_unit=0.05)
    assert isinstance(m, TwoHandDeltaMapping) and np.all(m(REF, REF) == m.neutral)
    # Right controller 5 cm forward -> right hand +x at full rate; left controller 2.5 cm up -> left hand +z at half.
    cur = frame(0.1, hand((0.1, 1.0, -0.25)), hand((-0.1, 1.025, -0.2)))
    np.testing.assert_allclose(m(REF, cur), [0.0, 0.0, 0.5, 1.0, 0.0, 0.0], atol=1e-6)
    far = frame(0.1, hand((5.0, -5.0, 5.0)), hand((-5.0, 5.0, -5.0)))
    assert np.all(np.abs(m(REF, far)) == 1.0)
    with pytest.raises(ValueError, match="produces 6"):
        make_mapping("kuavo_ee_delta", 14)


def test_toy_channels_in_documented_order():
    m = ToyAxesMapping(14)
    cur = ControllerFrame(
        0.1,
        hand((-0.1, 1.0, -0.25), thumbstick=(0.3, 0.4), trigger=0.25),
        hand((0.1, 1.05, -0.2), thumbstick=(-0.5, 0.6), trigger=0.75),
    )
    a = m(REF, cur)
    expected = [-0.5, 0.6, 0.3, 0.4, 0.75, 0.25, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(a, expected, atol=1e-6)
    assert ToyAxesMapping(4).hands == () and ToyAxesMapping(8).hands == ("right",)
    assert ToyAxesMapping(12).hands == ("right", "left")


def test_kuavo_arms_relative_pose_and_grippers():
    m = KuavoArmsMapping()
    neutral = m(REF, REF)
    np.testing.assert_allclose(neutral, m.neutral, atol=1e-6)
    # Right hand: 10 cm up, rotated 90 deg about OpenXR +y (up) -> robot +z; trigger half.
    s = np.sqrt(0.5)
    right = hand((0.1, 1.1, -0.2), trigger=0.5)
    right = type(right)(**{**right.__dict__, "orientation": (0.0, s, 0.0, s)})
    cmd = m.command(REF, frame(0.1, right, REF.left))
    assert cmd.right.position_delta == pytest.approx((0.0, 0.0, 0.1))
    assert cmd.right.orientation_delta == pytest.approx((0.0, 0.0, s, s))
    assert cmd.right.gripper == pytest.approx(50.0)
    assert cmd.left.position_delta == pytest.approx((0.0, 0.0, 0.0))
    flat = cmd.to_vector()
    assert flat.shape == (16,)
    back = KuavoArmsCommand.from_vector(flat)
    assert back.right.position_delta == pytest.approx(cmd.right.position_delta)
    assert back.right.orientation_delta == pytest.approx(cmd.right.orientation_delta, abs=1e-6)


def test_quaternion_helpers_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(100):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        np.testing.assert_allclose(matrix_to_quat(quat_to_matrix(q)), q, atol=1e-9)


def test_make_mapping_checks_sizes():
    assert make_mapping("ee_delta").action_dim == 4
    assert make_mapping("kuavo_arms", 16).action_dim == 16
    assert make_mapping("toy", 7).action_dim == 7
    with pytest.raises(ValueError):
        make_mapping("ee_delta", 14)
    with pytest.raises(ValueError):
        make_mapping("toy", 0)
    with pytest.raises(ValueError):
        make_mapping("nope")
