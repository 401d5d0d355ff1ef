"""Frame builders shared by the VR tests."""

from kuavo_vr_teleop.controller import ControllerFrame, HandState


def hand(pos=(0.0, 1.0, 0.0), squeeze=0.0, trigger=0.0, valid=True, **kw) -> HandState:
    return HandState(position=tuple(pos), pose_valid=valid, squeeze=squeeze, trigger=trigger, **kw)


def frame(t, right=None, left=None) -> ControllerFrame:
    return ControllerFrame(t, left if left is not None else hand(), right if right is not None else hand())
