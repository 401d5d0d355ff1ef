"""Safety building blocks: input checks, the latching e-stop, and action limiting. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .controller import ControllerFrame


def frame_is_finite(frame: ControllerFrame) -> bool:
    return all(math.isfinite(v) for hand in (frame.left, frame.right) for v in hand.floats())


def sanitize(frame: ControllerFrame) -> ControllerFrame:
    """A frame that is safe to compute with.

    Any NaN/inf means the tracking data cannot be trusted: both hands are marked pose-invalid
    and their analogue values zeroed. Buttons are kept, so the e-stop chord still works while
    tracking is broken.
    """
    if frame_is_finite(frame) and math.isfinite(frame.time_s):
        return frame

    def clean(hand):  # type: ignore[no-untyped-def]
        return replace(
            hand,
            position=(0.0, 0.0, 0.0),
            orientation=(0.0, 0.0, 0.0, 1.0),
            pose_valid=False,
            trigger=0.0,
            squeeze=0.0,
            thumbstick=(0.0, 0.0),
        )

    time_s = frame.time_s if math.isfinite(frame.time_s) else -math.inf
    return ControllerFrame(time_s, clean(frame.left), clean(frame.right))


def chord_pressed(frame: ControllerFrame | None, inputs: tuple[str, ...], threshold: float = 0.5) -> bool:
    """All inputs (``"left.x"``, ``"right.squeeze"``, ...) pressed beyond ``threshold``."""
    if frame is None or not inputs:
        return False
    return all(frame.input_value(spec) > threshold for spec in inputs)


@dataclass
class EstopLatch:
    """Latches on the e-stop chord; only the reset chord held for ``reset_hold_s`` clears it.

    Staleness or lost tracking never clears it: a latched stop stays until a deliberate reset.
    The reset is also the operator's way to clear an e-stop latched in the robot by someone else,
    so holding the reset chord counts as a reset (``reset_at``) whether or not this latch is set.
    """

    estop_chord: tuple[str, ...]
    reset_chord: tuple[str, ...]
    reset_hold_s: float
    latched: bool = False
    reset_at: float | None = None  # when the operator last completed a reset
    _reset_since: float | None = None

    def update(self, frame: ControllerFrame | None, now_s: float) -> bool:
        if chord_pressed(frame, self.estop_chord):
            self.latched = True
            self._reset_since = None
        elif chord_pressed(frame, self.reset_chord):
            if self._reset_since is None:
                self._reset_since = now_s
            if now_s - self._reset_since >= self.reset_hold_s:
                self.latched = False
                self.reset_at = now_s
                self._reset_since = None
        else:
            self._reset_since = None
        return self.latched

    def reset_recently(self, now_s: float, window_s: float) -> bool:
        return self.reset_at is not None and now_s - self.reset_at <= window_s


LABEL_SUCCESS, LABEL_FAILURE = 1, 2  # kuavo_msgs/EpisodeLabel


@dataclass
class LabelButtons:
    """Episode labels from two buttons (the Kuavo team's Y = success, X = failure), unambiguous beside
    an e-stop chord made of the same buttons: a label counts when its button is released after a press
    that started alone and during which none of ``exclusive`` (the chords' inputs, the other label
    button) was pressed. Pressing X and Y together (the e-stop) therefore never labels, in either order."""

    success: str  # "" = no success button
    failure: str
    exclusive: tuple[str, ...]
    _held: int = 0  # the label whose button is down, 0 = none
    _spoiled: bool = False
    _down: frozenset | None = frozenset()  # label buttons down at the last frame; None after stale input

    def _button(self, label: int) -> str:
        return self.success if label == LABEL_SUCCESS else self.failure

    def _others_pressed(self, frame: ControllerFrame, button: str) -> bool:
        others = set(self.exclusive) | {self.success, self.failure}
        return any(frame.input_value(spec) > 0.5 for spec in others - {button, ""})

    def update(self, frame: ControllerFrame | None) -> int:
        """The label completed by this frame (LABEL_SUCCESS / LABEL_FAILURE), or 0."""
        if frame is None:  # stale input: a press in progress no longer counts, nor one held through the gap
            self._held, self._down = 0, None
            return 0
        down = frozenset(b for b in (self.success, self.failure) if b and frame.input_value(b) > 0.5)
        pressed_now, self._down = down - (down if self._down is None else self._down), down
        if not self._held:
            for label in (LABEL_SUCCESS, LABEL_FAILURE):
                button = self._button(label)
                if button and button in pressed_now:
                    self._held, self._spoiled = label, self._others_pressed(frame, button)
                    break
            return 0
        button = self._button(self._held)
        if button in down:
            self._spoiled |= self._others_pressed(frame, button)
            return 0
        label, self._held = self._held, 0
        return 0 if self._spoiled else label


def limit_action(
    previous: np.ndarray,
    target: np.ndarray,
    max_delta: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """Move from ``previous`` toward ``target`` by at most ``max_delta`` per dim, within bounds.

    Non-finite target entries keep the previous value. ``previous`` is assumed in bounds and
    finite (the core guarantees it), so the result is too.
    """
    target = np.where(np.isfinite(target), target, previous)
    target = np.clip(target, low, high)
    step = np.clip(target - previous, -max_delta, max_delta)
    return np.clip(previous + step, low, high).astype(np.float32)
