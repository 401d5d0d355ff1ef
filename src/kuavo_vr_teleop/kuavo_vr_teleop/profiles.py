"""Which controls work with the controller profile an OpenXR runtime bound. Pure.

The runtime picks one of the profiles we suggest (Oculus Touch, or the Khronos simple controller as a
fallback) and may change it at any time. The simple controller has only select (read as the trigger),
menu and the poses: no grip for the default deadman, no X/Y/A/B for the default e-stop and reset. So
with it the node switches to the ``vr.simple_controller_*`` bindings, and refuses takeover unless a
deadman is configured for it; either way it says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from .teleop_core import Bindings

TOUCH_PROFILE = "/interaction_profiles/oculus/touch_controller"
SIMPLE_PROFILE = "/interaction_profiles/khr/simple_controller"

_ANALOGUE_AND_BUTTONS = {"trigger", "squeeze", "primary", "secondary", "thumbstick_click"}
# Inputs each profile delivers, per hand (names as in ControllerFrame.input_value, aliases resolved).
PROFILE_INPUTS: dict[str, dict[str, set[str]]] = {
    TOUCH_PROFILE: {"left": _ANALOGUE_AND_BUTTONS | {"menu"}, "right": set(_ANALOGUE_AND_BUTTONS)},
    SIMPLE_PROFILE: {"left": {"trigger", "menu"}, "right": {"trigger", "menu"}},
}
_ALIASES = {"a": "primary", "b": "secondary", "x": "primary", "y": "secondary"}


def unavailable_inputs(profile: str, inputs: tuple[str, ...]) -> list[str]:
    """The inputs (``"left.x"``...) that ``profile`` cannot deliver; none for an unknown profile."""
    per_hand = PROFILE_INPUTS.get(profile)
    if per_hand is None:
        return []
    missing = []
    for spec in inputs:
        side, _, name = spec.partition(".")
        if _ALIASES.get(name, name) not in per_hand.get(side, set()):
            missing.append(spec)
    return missing


@dataclass(frozen=True)
class ProfileChoice:
    bindings: Bindings
    message: str
    problem: bool  # the operator cannot do something they normally can: log it as a warning


def _describe(b: Bindings, reset_hold_s: float) -> str:
    labels = (f"labels {b.success_button} success / {b.failure_button} failure"
              if b.success_button or b.failure_button else "no episode labels")
    return (f"deadman {b.deadman or '(none)'}, e-stop {'+'.join(b.estop_chord)}, "
            f"reset {'+'.join(b.reset_chord)} held {reset_hold_s:g} s, {labels}")


def choose_bindings(profile: str, configured: Bindings, simple: Bindings, reset_hold_s: float) -> ProfileChoice:
    """The bindings to use with ``profile`` and what to tell the operator about them."""
    short = profile.rsplit("/interaction_profiles/", 1)[-1] if profile else "none"
    chosen = simple if profile == SIMPLE_PROFILE else configured
    every_input = (chosen.deadman,) * bool(chosen.deadman) + chosen.estop_chord + chosen.reset_chord
    missing = unavailable_inputs(profile, every_input)
    refusal = ""
    if not chosen.deadman:
        refusal = f"the {short} profile has no grip button and vr.simple_controller_deadman is empty"
    elif chosen.deadman in missing:
        refusal = f"the {short} profile has no {chosen.deadman} (the deadman)"
    if refusal:
        chosen = Bindings("", chosen.estop_chord, chosen.reset_chord, refusal=refusal)
    labels = (chosen.success_button, chosen.failure_button)
    if any(unavailable_inputs(profile, tuple(b for b in labels if b))):
        chosen = Bindings(chosen.deadman, chosen.estop_chord, chosen.reset_chord, refusal=chosen.refusal)
    message = f"OpenXR controllers bound as {short}: {_describe(chosen, reset_hold_s)}"
    if profile == SIMPLE_PROFILE and not refusal:
        message += " (fallback bindings for the simple controller, vr.simple_controller_*)"
    if refusal:
        message += (f". TAKEOVER IS REFUSED: {refusal}; use Touch controllers, or set vr.simple_controller_deadman "
                    "(e.g. right.trigger, the select button) to allow it")
    estop_missing = [s for s in chosen.estop_chord + chosen.reset_chord if s in missing]
    if estop_missing:
        message += f". THE E-STOP OR ITS RESET CANNOT BE PRESSED: {', '.join(estop_missing)} missing"
    return ProfileChoice(chosen, message, problem=bool(refusal or estop_missing or profile == SIMPLE_PROFILE))
