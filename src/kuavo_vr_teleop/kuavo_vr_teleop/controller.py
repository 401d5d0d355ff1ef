"""Controller state as plain, immutable, JSON-serialisable data.

Tuples rather than numpy arrays so that frames compare with ``==``, hash, and survive a
JSON round trip unchanged (used by the recorder and by tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]  # x, y, z, w (OpenXR order)

IDENTITY_QUAT: Quat = (0.0, 0.0, 0.0, 1.0)

# Face buttons are stored per hand as primary/secondary because the Touch controllers have
# A/B on the right and X/Y on the left; these aliases let configs say "right.a" or "left.x".
BUTTON_ALIASES = {"a": "primary", "b": "secondary", "x": "primary", "y": "secondary"}


@dataclass(frozen=True)
class HandState:
    """One controller. Positions in metres, in the runtime's reference space (stage)."""

    position: Vec3 = (0.0, 0.0, 0.0)
    orientation: Quat = IDENTITY_QUAT
    pose_valid: bool = False
    trigger: float = 0.0  # 0..1
    squeeze: float = 0.0  # 0..1 (grip)
    thumbstick: tuple[float, float] = (0.0, 0.0)  # x right, y up, each -1..1
    primary: bool = False  # A (right) / X (left)
    secondary: bool = False  # B (right) / Y (left)
    thumbstick_click: bool = False
    menu: bool = False  # Touch: left hand only; simple controller: both
    active: bool = True  # False when the runtime reports the controller inactive/unfocused

    def value(self, name: str) -> float:
        """An input by name as a float (buttons 0/1); raises KeyError for unknown names."""
        name = BUTTON_ALIASES.get(name, name)
        if name in ("trigger", "squeeze"):
            return float(getattr(self, name))
        if name in ("primary", "secondary", "thumbstick_click", "menu"):
            return 1.0 if getattr(self, name) else 0.0
        raise KeyError(f"unknown controller input {name!r}")

    def floats(self) -> tuple[float, ...]:
        """Every analogue value, for finiteness checks."""
        return (*self.position, *self.orientation, self.trigger, self.squeeze, *self.thumbstick)

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": list(self.position),
            "orientation": list(self.orientation),
            "pose_valid": self.pose_valid,
            "trigger": self.trigger,
            "squeeze": self.squeeze,
            "thumbstick": list(self.thumbstick),
            "primary": self.primary,
            "secondary": self.secondary,
            "thumbstick_click": self.thumbstick_click,
            "menu": self.menu,
            "active": self.active,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HandState:
        return cls(
            position=tuple(float(v) for v in d.get("position", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
            orientation=tuple(float(v) for v in d.get("orientation", IDENTITY_QUAT)),  # type: ignore[arg-type]
            pose_valid=bool(d.get("pose_valid", False)),
            trigger=float(d.get("trigger", 0.0)),
            squeeze=float(d.get("squeeze", 0.0)),
            thumbstick=tuple(float(v) for v in d.get("thumbstick", (0.0, 0.0))),  # type: ignore[arg-type]
            primary=bool(d.get("primary", False)),
            secondary=bool(d.get("secondary", False)),
            thumbstick_click=bool(d.get("thumbstick_click", False)),
            menu=bool(d.get("menu", False)),
            active=bool(d.get("active", True)),
        )


@dataclass(frozen=True)
class ControllerFrame:
    """Both controllers at one instant; ``time_s`` is the source's monotonic time."""

    time_s: float
    left: HandState = field(default_factory=HandState)
    right: HandState = field(default_factory=HandState)

    def hand(self, side: str) -> HandState:
        if side == "left":
            return self.left
        if side == "right":
            return self.right
        raise KeyError(f"unknown hand {side!r} (expected 'left' or 'right')")

    def input_value(self, spec: str) -> float:
        """Value of an input named ``"<hand>.<input>"``, e.g. ``"right.squeeze"``, ``"left.x"``."""
        side, _, name = spec.partition(".")
        return self.hand(side).value(name)

    def with_hand(self, side: str, hand: HandState) -> ControllerFrame:
        return replace(self, **{side: hand})

    def to_dict(self) -> dict[str, Any]:
        return {"time_s": self.time_s, "left": self.left.to_dict(), "right": self.right.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ControllerFrame:
        return cls(
            time_s=float(d["time_s"]),
            left=HandState.from_dict(d.get("left", {})),
            right=HandState.from_dict(d.get("right", {})),
        )
