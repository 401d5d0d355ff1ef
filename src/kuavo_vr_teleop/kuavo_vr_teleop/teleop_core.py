"""The teleop state machine: clutch, e-stop, staleness, tracking loss, limits. Pure.

``TeleopCore.update(frame, now_s)`` is called at a fixed rate with the newest frame (or None
when the source has nothing new) and always returns a finite, in-bounds action.

States: idle -> (deadman pressed, input fresh, tracking ok) -> engaged.
Engaged -> idle when the deadman is released, input goes stale, or tracking is lost; after a
stale/lost release the operator must release and press the deadman again. The e-stop chord
latches (over everything) until the reset chord is held for ``reset_hold_s``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from .controller import ControllerFrame
from .mapping import XR_TO_ROBOT, Mapping
from .safety import EstopLatch, LabelButtons, limit_action, sanitize


@dataclass(frozen=True)
class TeleopConfig:
    # Deadman / clutch: takeover only while this input is above the threshold.
    deadman: str = "right.squeeze"
    deadman_threshold: float = 0.5
    # X+Y on the left controller stops (as Leju's Quest teleop); A+B held 1 s resets.
    estop_chord: tuple[str, ...] = ("left.x", "left.y")
    reset_chord: tuple[str, ...] = ("right.a", "right.b")
    reset_hold_s: float = 1.0
    # No new frame for this long -> takeover released.
    stale_timeout_s: float = 0.3
    # Per-update change limit, scalar or one per action dim; None -> 10% of each dim's range.
    max_delta_per_step: float | tuple[float, ...] | None = None
    # Box for each controller's displacement from its engage pose (robot axes, metres).
    workspace_low: tuple[float, float, float] = (-0.5, -0.5, -0.5)
    workspace_high: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # Episode labels: press and release alone ("" = none). Y and X as the Kuavo team's Quest set-up.
    success_button: str = "left.y"
    failure_button: str = "left.x"
    # Optional tighter action bounds (intersected with the mapping's own bounds).
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TeleopOutput:
    active: bool
    action: np.ndarray  # float32, finite, within bounds
    estop: bool
    reason: str
    # The operator completed a reset: sent for RESET_ANNOUNCE_S so that a lost message does not
    # leave the robot stopped (it clears an e-stop latched in the actor, never engages by itself).
    estop_reset: bool = False
    # The operator's episode label (1 success, 2 failure, 0 none), sent for LABEL_ANNOUNCE_S under one
    # label_id so that a lost message does not lose it.
    label: int = 0
    label_id: int = 0


@dataclass(frozen=True)
class Bindings:
    """The controls, as a set that can be swapped at run time.
    deadman "" = takeover impossible (``refusal`` says why)."""
    deadman: str
    estop_chord: tuple[str, ...]
    reset_chord: tuple[str, ...]
    success_button: str = ""
    failure_button: str = ""
    refusal: str = ""


RESET_ANNOUNCE_S = 1.0
LABEL_ANNOUNCE_S = 0.5


class TeleopCore:
    def __init__(self, mapping: Mapping, config: TeleopConfig = TeleopConfig()) -> None:
        self.mapping = mapping
        self.config = config
        n = mapping.action_dim
        low = np.asarray(mapping.low, dtype=np.float32)
        high = np.asarray(mapping.high, dtype=np.float32)
        if config.action_low is not None:
            low = np.maximum(low, np.broadcast_to(np.asarray(config.action_low, dtype=np.float32), (n,)))
        if config.action_high is not None:
            high = np.minimum(high, np.broadcast_to(np.asarray(config.action_high, dtype=np.float32), (n,)))
        if np.any(low > high):
            raise ValueError("action bounds are empty (low > high)")
        self.low, self.high = low, high
        self.neutral = np.clip(np.asarray(mapping.neutral, dtype=np.float32), low, high)
        if config.max_delta_per_step is None:
            max_delta = 0.1 * (high - low)
        else:
            max_delta = np.broadcast_to(np.asarray(config.max_delta_per_step, dtype=np.float32), (n,))
        if np.any(~np.isfinite(max_delta)) or np.any(max_delta < 0):
            raise ValueError("max_delta_per_step must be finite and >= 0")
        self.max_delta = np.asarray(max_delta, dtype=np.float32)
        self._ws_low = np.asarray(config.workspace_low, dtype=np.float64)
        self._ws_high = np.asarray(config.workspace_high, dtype=np.float64)
        self._estop = EstopLatch(config.estop_chord, config.reset_chord, config.reset_hold_s)
        self._labels = self._label_buttons(config)
        self.refusal = ""  # why takeover is impossible with the current bindings (deadman "")
        # Ids continue from a random start: a restarted node's labels are never taken for repeats.
        self._label, self._label_id, self._label_at = 0, int.from_bytes(os.urandom(3), "little"), -1.0
        self._latest: ControllerFrame | None = None
        self._latest_rx: float | None = None  # now_s when the latest new frame arrived
        self._ref: ControllerFrame | None = None  # frame at the moment of engaging
        self._need_release = False
        self._action = self.neutral.copy()

    @staticmethod
    def _label_buttons(config: TeleopConfig) -> LabelButtons:
        return LabelButtons(config.success_button, config.failure_button,
                            tuple(config.estop_chord) + tuple(config.reset_chord))

    def use_bindings(self, bindings: Bindings) -> None:
        """Switch the controls (e.g. when the runtime binds a controller profile without a grip button).
        Any takeover ends and must be started again; a latched e-stop stays latched."""
        self.config = replace(self.config, deadman=bindings.deadman, estop_chord=bindings.estop_chord,
                              reset_chord=bindings.reset_chord, success_button=bindings.success_button,
                              failure_button=bindings.failure_button)
        self.refusal = bindings.refusal
        self._estop = EstopLatch(bindings.estop_chord, bindings.reset_chord, self.config.reset_hold_s,
                                 latched=self._estop.latched, reset_at=self._estop.reset_at)
        self._labels = self._label_buttons(self.config)
        self._idle("controls changed", need_release=self.engaged)

    @property
    def engaged(self) -> bool:
        return self._ref is not None

    def update(self, frame: ControllerFrame | None, now_s: float, input_lost: bool = False) -> TeleopOutput:
        """``input_lost``: the source is known to be gone (e.g. the OpenXR runtime died): the last frame
        stops counting at once rather than after ``stale_timeout_s``."""
        cfg = self.config
        if input_lost:
            self._latest_rx = None
        elif frame is not None:
            frame = sanitize(frame)
            # Only strictly newer frames count as fresh input (a repeated frame is not a sign of life).
            if self._latest is None or frame.time_s > self._latest.time_s:
                self._latest, self._latest_rx = frame, now_s
        stale = self._latest_rx is None or now_s - self._latest_rx > cfg.stale_timeout_s
        fresh = None if stale else self._latest
        estop = self._estop.update(fresh, now_s)
        label = self._labels.update(fresh)
        if label and not estop:  # a stopped robot's episode is not labelled
            self._label, self._label_id, self._label_at = label, self._label_id + 1, now_s
        deadman = bool(cfg.deadman) and fresh is not None and fresh.input_value(cfg.deadman) > cfg.deadman_threshold
        tracking = fresh is not None and all(
            fresh.hand(h).pose_valid and fresh.hand(h).active for h in self.mapping.hands
        )

        if estop:
            return self._idle(reason="estop", estop=True, need_release=True)
        out = self._control(fresh, stale, deadman, tracking, input_lost)
        if self._label and now_s - self._label_at <= LABEL_ANNOUNCE_S:
            out = replace(out, label=self._label, label_id=self._label_id)
        return replace(out, estop_reset=True) if self._estop.reset_recently(now_s, RESET_ANNOUNCE_S) else out

    def _control(self, fresh: ControllerFrame | None, stale: bool, deadman: bool, tracking: bool,
                 input_lost: bool) -> TeleopOutput:
        """Engage, follow or release (no e-stop latched)."""
        if self.engaged:
            if stale:
                return self._idle("input lost" if input_lost else "input stale", need_release=True)
            if not tracking:
                return self._idle("tracking lost", need_release=True)
            if not deadman:
                return self._idle("clutch released")
            assert fresh is not None and self._ref is not None
            target = self.mapping(self._ref, self._clamp_workspace(fresh))
            self._action = limit_action(self._action, np.asarray(target, dtype=np.float32),
                                        self.max_delta, self.low, self.high)
            return TeleopOutput(True, self._action.copy(), False, "engaged")

        if stale:
            return self._idle("no input" if self._latest is None or input_lost else "input stale")
        if not self.config.deadman:
            return self._idle("takeover refused: " + (self.refusal or "no deadman input"))
        if self._need_release:
            if deadman:
                return self._idle("release the clutch to re-engage")
            self._need_release = False
        if not deadman:
            return self._idle("clutch released")
        if not tracking:
            return self._idle("tracking lost")
        # Engage: remember the reference pose; the first output is the neutral (hold) action.
        self._ref = fresh
        self._action = self.neutral.copy()
        return TeleopOutput(True, self._action.copy(), False, "engaged")

    def _idle(self, reason: str, estop: bool = False, need_release: bool = False) -> TeleopOutput:
        # A forced release (stale, lost tracking, e-stop) must be acknowledged by releasing the clutch.
        if need_release and (self._ref is not None or estop):
            self._need_release = True
        self._ref = None
        self._action = self.neutral.copy()
        return TeleopOutput(False, self._action.copy(), estop, reason)

    def _clamp_workspace(self, frame: ControllerFrame) -> ControllerFrame:
        """Clamp each controller's displacement from its engage pose to the workspace box."""
        assert self._ref is not None
        out = frame
        for side in ("left", "right"):
            ref_pos = np.asarray(self._ref.hand(side).position, dtype=np.float64)
            hand = frame.hand(side)
            with np.errstate(all="ignore"):
                d = XR_TO_ROBOT @ (np.asarray(hand.position, dtype=np.float64) - ref_pos)
                d = np.clip(np.nan_to_num(d, nan=0.0), self._ws_low, self._ws_high)
                pos = ref_pos + XR_TO_ROBOT.T @ d
            out = out.with_hand(side, replace(hand, position=(float(pos[0]), float(pos[1]), float(pos[2]))))
        return out
