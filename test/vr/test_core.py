import math

import numpy as np
import pytest

from helpers.vr_frames import frame, hand
from kuavo_vr_teleop.controller import ControllerFrame, HandState
from kuavo_vr_teleop.mapping import EndEffectorDeltaMapping, KuavoArmsMapping, ToyAxesMapping
from kuavo_vr_teleop.teleop_core import TeleopConfig, TeleopCore

DT = 0.02


def held(pos=(0.0, 1.0, 0.0), **kw):
    return hand(pos, squeeze=1.0, **kw)


def test_engage_never_jumps_and_then_ramps():
    core = TeleopCore(EndEffectorDeltaMapping(), TeleopConfig(max_delta_per_step=0.25))
    assert not core.update(frame(0.0), 0.0).active  # deadman not held
    # Operator squeezes while the hand is far away and the trigger is pulled: no jump.
    start = held((0.3, 1.2, -0.4), trigger=1.0)
    out = core.update(frame(DT, start), DT)
    assert out.active and out.reason == "engaged"
    np.testing.assert_array_equal(out.action, np.zeros(4, dtype=np.float32))
    # Moving 10 cm forward (-z in OpenXR) ramps +x at most 0.25 per step, gripper closes.
    moved = held((0.3, 1.2, -0.5), trigger=1.0)
    outs = [core.update(frame(DT * (i + 2), moved), DT * (i + 2)) for i in range(6)]
    xs = [o.action[0] for o in outs]
    assert xs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(o.action[3] == pytest.approx(min(1.0, 0.25 * (i + 1))) for i, o in enumerate(outs))
    np.testing.assert_allclose([o.action[1] for o in outs], 0.0, atol=1e-6)


def test_toy_mapping_with_absolute_axes_still_starts_neutral():
    core = TeleopCore(ToyAxesMapping(6), TeleopConfig(max_delta_per_step=0.1))
    first = core.update(frame(0.0, held(thumbstick=(1.0, -1.0))), 0.0)
    assert first.active and np.all(first.action == 0.0)
    second = core.update(frame(DT, held(thumbstick=(1.0, -1.0))), DT)
    assert second.action[:2] == pytest.approx([0.1, -0.1])


def test_releasing_deadman_releases_and_output_returns_to_neutral():
    core = TeleopCore(EndEffectorDeltaMapping())
    core.update(frame(0.0, held()), 0.0)
    assert core.update(frame(DT, held((0, 1, -0.1))), DT).active
    out = core.update(frame(2 * DT, hand((0, 1, -0.1))), 2 * DT)
    assert not out.active and out.reason == "clutch released"
    assert np.all(out.action == 0.0)
    # Pressing again engages immediately (no forced release after a voluntary one), no jump.
    again = core.update(frame(3 * DT, held((0, 1, -0.3))), 3 * DT)
    assert again.active and np.all(again.action == 0.0)


def press_estop(t):
    return frame(t, held(), hand(primary=True, secondary=True))  # left X+Y


def reset_chord(t):
    # Right A+B with the clutch (squeeze) still held: the reset must not resume a takeover.
    return frame(t, hand(primary=True, secondary=True, squeeze=1.0))


def test_estop_chord_latches_until_reset_chord_held():
    cfg = TeleopConfig(reset_hold_s=1.0)
    core = TeleopCore(EndEffectorDeltaMapping(), cfg)
    t = 0.0
    assert core.update(frame(t, held()), t).active
    t += DT
    out = core.update(press_estop(t), t)
    assert out.estop and not out.active and out.reason == "estop"
    # Released chord, deadman held: still latched, for as long as we like.
    for _ in range(100):
        t += DT
        out = core.update(frame(t, held()), t)
        assert out.estop and not out.active
    # Reset chord held for less than 1 s, then let go: still latched.
    for _ in range(int(0.8 / DT)):
        t += DT
        assert core.update(reset_chord(t), t).estop
    t += DT
    assert core.update(frame(t), t).estop
    # Held for a full second: cleared.
    t0 = t + DT
    while True:
        t += DT
        out = core.update(reset_chord(t), t)
        if not out.estop:
            break
        assert t - t0 < 1.0 + 1e-9
    assert t - t0 >= 1.0 - 1e-9
    # After a reset the operator must release and press the clutch again.
    t += DT
    assert not core.update(frame(t, held()), t).active
    t += DT
    assert not core.update(frame(t), t).active
    t += DT
    assert core.update(frame(t, held()), t).active


def test_estop_works_even_with_nan_tracking():
    core = TeleopCore(EndEffectorDeltaMapping())
    bad_left = HandState(position=(math.nan, 0, 0), pose_valid=True, primary=True, secondary=True)
    out = core.update(ControllerFrame(0.0, bad_left, held()), 0.0)
    assert out.estop and not out.active


@pytest.mark.parametrize("timeout", [0.1, 0.3])
def test_stale_input_releases_within_timeout_and_needs_reclutch(timeout):
    core = TeleopCore(EndEffectorDeltaMapping(), TeleopConfig(stale_timeout_s=timeout))
    assert core.update(frame(0.0, held()), 0.0).active
    # Source goes silent (None) - still active up to the timeout, released right after.
    t = 0.0
    while t + DT <= timeout - 1e-9:
        t += DT
        assert core.update(None, t).active
    out = core.update(None, timeout + 1e-3)
    assert not out.active and out.reason == "input stale"
    # A repeated old frame is not fresh input.
    assert not core.update(frame(0.0, held()), timeout + 0.01).active
    # Fresh frames with the deadman still held do not re-engage...
    t = timeout + 0.05
    assert not core.update(frame(t, held()), t).active
    # ...until the clutch is released and pressed again.
    assert not core.update(frame(t + DT, hand()), t + DT).active
    assert core.update(frame(t + 2 * DT, held()), t + 2 * DT).active


def test_lost_tracking_releases_immediately_and_needs_reclutch():
    core = TeleopCore(EndEffectorDeltaMapping())
    assert core.update(frame(0.0, held()), 0.0).active
    out = core.update(frame(DT, held(valid=False)), DT)
    assert not out.active and out.reason == "tracking lost"
    assert not core.update(frame(2 * DT, held()), 2 * DT).active  # tracking back, clutch still held
    core.update(frame(3 * DT, hand()), 3 * DT)
    assert core.update(frame(4 * DT, held()), 4 * DT).active


def test_inactive_controller_counts_as_lost_tracking():
    core = TeleopCore(EndEffectorDeltaMapping())
    assert core.update(frame(0.0, held()), 0.0).active
    assert not core.update(frame(DT, held(active=False)), DT).active


def test_nan_pose_is_lost_tracking_not_propagated():
    core = TeleopCore(KuavoArmsMapping())
    both = lambda t, p: ControllerFrame(t, held(p), held(p))  # noqa: E731
    assert core.update(both(0.0, (0, 1, 0)), 0.0).active
    out = core.update(both(DT, (math.nan, 1, 0)), DT)
    assert not out.active and out.reason == "tracking lost" and np.all(np.isfinite(out.action))


def test_workspace_clamps_displacement():
    cfg = TeleopConfig(workspace_low=(-0.02,) * 3, workspace_high=(0.02,) * 3, max_delta_per_step=10.0)
    core = TeleopCore(EndEffectorDeltaMapping(metres_per_unit=0.05), cfg)
    core.update(frame(0.0, held()), 0.0)
    out = core.update(frame(DT, held((0, 1, -1.0))), DT)  # 1 m forward, clamped to 2 cm
    assert out.action[0] == pytest.approx(0.02 / 0.05)


@pytest.mark.parametrize("mapping", [EndEffectorDeltaMapping(), ToyAxesMapping(14), KuavoArmsMapping()],
                         ids=lambda m: m.name)
def test_adversarial_input_keeps_output_finite_bounded_and_rate_limited(mapping):
    rng = np.random.default_rng(0)
    cfg = TeleopConfig(stale_timeout_s=0.3)
    core = TeleopCore(mapping, cfg)
    huge = [1e308, -1e308, 1e6, -1e6, 0.0]
    non_finite = [math.nan, math.inf, -math.inf]

    def num(allow_non_finite):
        r = rng.random()
        if allow_non_finite and r < 0.2:
            return float(rng.choice(non_finite))
        if r < 0.4:
            return float(rng.choice(huge))
        return float(rng.normal(0, 5))  # metres: far outside any workspace

    def rand_hand(bad):
        return HandState(
            position=(num(bad), num(bad), num(bad)),
            orientation=(num(bad), num(bad), num(bad), num(bad)),
            pose_valid=bool(rng.random() < 0.97),
            trigger=num(bad), squeeze=float(rng.choice([1.0] * 8 + [0.0, math.nan])),
            thumbstick=(num(bad), num(bad)),
        )

    prev = core.neutral.copy()
    t = 0.0
    active_steps = 0
    for _ in range(3000):
        t += DT
        bad = rng.random() < 0.05  # this frame may carry NaN/inf
        f = None if rng.random() < 0.05 else ControllerFrame(t, rand_hand(bad), rand_hand(bad))
        out = core.update(f, t)
        a = out.action
        assert a.dtype == np.float32 and a.shape == (mapping.action_dim,)
        assert np.all(np.isfinite(a))
        assert np.all(a >= core.low) and np.all(a <= core.high)
        if out.active:
            active_steps += 1
            assert np.all(np.abs(a - prev) <= core.max_delta + 1e-5)
        prev = a
    assert active_steps > 100  # the test exercised the engaged path


def test_config_bounds_tighten_mapping_bounds():
    core = TeleopCore(ToyAxesMapping(3), TeleopConfig(action_low=(-0.2,), action_high=(0.3,), max_delta_per_step=5))
    core.update(frame(0.0, held(thumbstick=(1.0, -1.0))), 0.0)
    out = core.update(frame(DT, held(thumbstick=(1.0, -1.0))), DT)
    assert out.action[:2] == pytest.approx([0.3, -0.2])


def test_reset_is_announced_for_a_second_even_without_a_local_latch():
    # Someone else latched the e-stop in the actor: the operator's reset chord must still send the reset.
    core = TeleopCore(EndEffectorDeltaMapping(), TeleopConfig(reset_hold_s=1.0))
    t, announced = 0.0, []
    while True:
        t += DT
        out = core.update(reset_chord(t), t)
        assert not out.estop
        if out.estop_reset:
            break
    assert t - DT >= 1.0 - 1e-9  # not before the chord was held for 1 s
    for _ in range(int(2.0 / DT)):
        t += DT
        out = core.update(frame(t), t)
        assert not out.estop and not out.active
        announced.append(out.estop_reset)
    assert announced[0] and not announced[-1]
    assert 0.9 <= sum(announced) * DT <= 1.1  # announced for RESET_ANNOUNCE_S, so one lost message does not matter
