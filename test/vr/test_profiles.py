"""Controls per controller profile, switching them at run time, and a lost source ending a takeover at once."""

import numpy as np

from helpers.vr_frames import frame, hand
from kuavo_vr_teleop.mapping import EndEffectorDeltaMapping
from kuavo_vr_teleop.profiles import SIMPLE_PROFILE, TOUCH_PROFILE, choose_bindings, unavailable_inputs
from kuavo_vr_teleop.supervisor import Logs, SourceSupervisor
from kuavo_vr_teleop.teleop_core import Bindings, TeleopCore

CONFIGURED = Bindings("right.squeeze", ("left.x", "left.y"), ("right.a", "right.b"), "left.y", "left.x")
SIMPLE_REFUSE = Bindings("", ("left.menu",), ("right.menu",))
SIMPLE_TRIGGER = Bindings("right.trigger", ("left.menu",), ("right.menu",))


def test_touch_gets_the_configured_controls_quietly():
    choice = choose_bindings(TOUCH_PROFILE, CONFIGURED, SIMPLE_REFUSE, 1.0)
    assert choice.bindings == CONFIGURED and not choice.problem
    assert choice.message == ("OpenXR controllers bound as oculus/touch_controller: deadman right.squeeze, "
                              "e-stop left.x+left.y, reset right.a+right.b held 1 s, "
                              "labels left.y success / left.x failure")


def test_simple_controller_without_a_configured_deadman_refuses_takeover_loudly():
    choice = choose_bindings(SIMPLE_PROFILE, CONFIGURED, SIMPLE_REFUSE, 1.0)
    assert choice.problem and choice.bindings.deadman == "" and "no grip button" in choice.bindings.refusal
    assert "TAKEOVER IS REFUSED" in choice.message and "vr.simple_controller_deadman" in choice.message
    assert choice.bindings.estop_chord == ("left.menu",)  # the e-stop still works


def test_simple_controller_with_a_deadman_uses_the_fallback_and_warns():
    choice = choose_bindings(SIMPLE_PROFILE, CONFIGURED, SIMPLE_TRIGGER, 1.0)
    assert choice.bindings == SIMPLE_TRIGGER and choice.problem
    assert "fallback bindings" in choice.message and "no episode labels" in choice.message


def test_controls_the_profile_lacks_are_refused_or_flagged():
    # The right Touch controller has no menu button (it is the runtime's system button).
    assert unavailable_inputs(TOUCH_PROFILE, ("right.menu", "left.menu", "left.x", "right.b")) == ["right.menu"]
    assert unavailable_inputs("/interaction_profiles/unknown", ("right.menu",)) == []
    deadman_missing = choose_bindings(TOUCH_PROFILE, Bindings("right.menu", ("left.x",), ("right.a",)),
                                      SIMPLE_REFUSE, 1.0)
    assert deadman_missing.bindings.deadman == "" and "TAKEOVER IS REFUSED" in deadman_missing.message
    estop_missing = choose_bindings(TOUCH_PROFILE, Bindings("right.squeeze", ("right.menu",), ("right.a",)),
                                    SIMPLE_REFUSE, 1.0)
    assert estop_missing.problem and "E-STOP OR ITS RESET CANNOT BE PRESSED: right.menu" in estop_missing.message
    simple_labels = choose_bindings(SIMPLE_PROFILE, CONFIGURED,
                                    Bindings("right.trigger", ("left.menu",), ("right.menu",), "left.y", ""), 1.0)
    assert simple_labels.bindings.success_button == ""  # a label button the profile lacks is dropped


def _core():
    return TeleopCore(EndEffectorDeltaMapping())


def test_switching_controls_ends_a_takeover_keeps_the_estop_and_refused_controls_never_engage():
    core = _core()
    assert core.update(frame(0.0, hand(squeeze=1.0)), 0.0).active
    core.use_bindings(SIMPLE_REFUSE)
    out = core.update(frame(0.02, hand(squeeze=1.0, trigger=1.0)), 0.02)
    assert not out.active and out.reason.startswith("takeover refused: ")
    estop = frame(0.04, hand(squeeze=1.0), left=hand(menu=True))
    assert core.update(estop, 0.04).estop  # the simple controller's e-stop: left menu
    core.use_bindings(CONFIGURED)
    out = core.update(frame(0.06, hand(squeeze=1.0)), 0.06)
    assert out.estop and not out.active  # still latched after the profile changed back
    core.use_bindings(SIMPLE_TRIGGER)
    t = 0.08
    while t < 1.2:  # right menu held for reset_hold_s resets it
        out = core.update(frame(t, hand(menu=True)), t)
        t += 0.02
    assert out.estop_reset and not out.estop
    assert core.update(frame(t, hand(trigger=1.0)), t).active  # the trigger is the deadman now


def test_a_lost_source_releases_at_once_not_after_the_stale_timeout():
    core = _core()
    assert core.update(frame(0.0, hand(squeeze=1.0)), 0.0).active
    out = core.update(None, 0.02, input_lost=True)  # well inside the 0.3 s stale timeout
    assert not out.active and out.reason == "input lost" and np.all(out.action == 0.0)
    assert not core.update(None, 0.04).active  # and stays released
    assert not core.update(frame(0.06, hand(squeeze=1.0)), 0.06).active  # grip held through the loss: release first
    assert not core.update(frame(0.08, hand()), 0.08).active
    assert core.update(frame(0.10, hand(squeeze=1.0)), 0.10).active


class _DyingSource:
    name = "dying"

    def __init__(self):
        self.alive, self.polls, self.closed = True, 0, False

    def poll(self):
        self.polls += 1
        if self.polls == 2:  # the runtime dies during this poll
            self.alive = False
            return None
        return frame(float(self.polls), hand())

    def close(self):
        self.closed = True


def test_supervisor_reports_the_loss_on_the_poll_that_finds_it():
    source = _DyingSource()
    warnings = []
    sup = SourceSupervisor(factory=lambda: source, retry_period_s=1.0, logs=Logs(warn=warnings.append, info=print))
    assert sup.poll(0.0) is not None and sup.connected
    assert sup.poll(0.02) is None and not sup.connected and source.closed
    assert warnings == ["input source 'dying' was lost; reopening in 1 s"]
