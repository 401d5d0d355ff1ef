"""Episode labels from the headset: Y (success) and X (failure) pressed and released alone; X and Y
together stay the e-stop and never label, in any order."""
import pytest

from helpers.vr_frames import frame, hand
from kuavo_rl.config import ConfigError, load_config
from kuavo_vr_teleop.mapping import EndEffectorDeltaMapping
from kuavo_vr_teleop.node import core_from_config
from kuavo_vr_teleop.teleop_core import LABEL_ANNOUNCE_S, TeleopConfig, TeleopCore

DT = 0.02
NONE, X, Y, XY = {}, {"primary": True}, {"secondary": True}, {"primary": True, "secondary": True}


def play(core, left_buttons, t0=0.0):
    """Feed one frame per entry (left controller buttons); returns the outputs."""
    times = [t0 + i * DT for i in range(len(left_buttons))]
    return [core.update(frame(t, left=hand(**buttons)), t) for t, buttons in zip(times, left_buttons)]


def labels(outputs):
    """The distinct (label, label_id) the outputs announce, in order."""
    seen = []
    for out in outputs:
        if out.label and (out.label, out.label_id) not in seen:
            seen.append((out.label, out.label_id))
    return seen


def test_y_then_x_pressed_alone_label_success_then_failure_on_release():
    core = TeleopCore(EndEffectorDeltaMapping())
    outputs = play(core, [NONE, Y, Y, Y, NONE, NONE, X, X, NONE, NONE])
    assert not any(o.label for o in outputs[:4])  # nothing while the button is held
    announced = labels(outputs)
    assert [label for label, _ in announced] == [1, 2]
    assert announced[1][1] == announced[0][1] + 1
    assert not any(o.estop for o in outputs)


@pytest.mark.parametrize("sequence", [
    [NONE, X, XY, XY, Y, NONE],  # X first, then Y: the e-stop; releasing X leaves Y, releasing Y must not label
    [NONE, Y, XY, X, NONE],  # Y first
    [NONE, XY, XY, Y, NONE],  # both at once, X released first
    [NONE, XY, X, NONE],
])
def test_the_estop_chord_never_labels(sequence):
    core = TeleopCore(EndEffectorDeltaMapping())
    outputs = play(core, sequence + [NONE] * 5)
    assert any(o.estop for o in outputs)
    assert labels(outputs) == []


def test_a_label_is_announced_for_a_while_under_one_id_and_stale_input_cancels_a_press():
    core = TeleopCore(EndEffectorDeltaMapping())
    outputs = play(core, [NONE, Y, NONE] + [NONE] * 40)
    announcing = [o for o in outputs if o.label]
    assert len({o.label_id for o in announcing}) == 1
    assert (len(announcing) - 1) * DT == pytest.approx(LABEL_ANNOUNCE_S, abs=DT)
    # A press whose input goes stale (no frames for longer than the stale timeout) does not count.
    core = TeleopCore(EndEffectorDeltaMapping(), TeleopConfig(stale_timeout_s=0.1))
    play(core, [NONE, Y])
    for t in (0.2, 0.4, 0.6):  # the node keeps polling: nothing new
        core.update(None, t)
    late = play(core, [Y, NONE, NONE], t0=1.0)
    assert labels(late) == []


def test_a_reset_chord_press_spoils_a_label_and_buttons_are_configurable():
    core = TeleopCore(EndEffectorDeltaMapping())
    outputs = [core.update(frame(0.0, left=hand()), 0.0), core.update(frame(DT, left=hand(**Y)), DT),
               core.update(frame(2 * DT, left=hand(**Y), right=hand(primary=True)), 2 * DT),  # right A
               core.update(frame(3 * DT, left=hand()), 3 * DT)]
    assert labels(outputs) == []
    config = load_config(None, ["vr.success_button=right.b", "vr.failure_button=''", "env.action_dim=14"])
    core = core_from_config(config)
    outputs = [core.update(frame(i * DT, right=hand(secondary=b)), i * DT) for i, b in enumerate([False, True, False])]
    assert [label for label, _ in labels(outputs)] == [1]


@pytest.mark.parametrize("overrides, message", [
    (["vr.success_button=right.squeeze"], "is the deadman"),
    (["vr.success_button=left.z"], "vr.success_button"),
    (["vr.failure_button=left.y"], "both 'left.y'"),
])
def test_label_buttons_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        core_from_config(load_config(None, overrides + ["env.action_dim=14"]))
