"""Deterministic, fully populated kuavo_msgs messages (every field non-default), built the same
way in the publishing process and in the test, so received messages can be compared whole."""
from __future__ import annotations

import array
import importlib

STACK_MESSAGES = ("EnvObservation", "ActionCommand", "TransitionBatch", "BatchAck", "PolicyWeights",
                  "Intervention", "LearnerStatus", "ActorStatus", "EpisodeLabel")
KUAVO_MESSAGES = ("JointData", "ImuData", "EndEffectorData", "SensorsData", "ArmTargetPoses",
                  "RobotHandPosition", "LejuClawCommand", "ArmHandPose", "TwoArmHandPose", "IkSolveParam",
                  "TwoArmHandPoseCmd")
ARRAY_CODES = {"float": "f", "double": "d", "uint64": "Q", "uint32": "I", "uint8": "B", "int32": "i",
               "int64": "q", "octet": "B"}


def _scalar(kind: str, seed: int, in_sequence: bool = False):
    if kind in ("float", "double"):
        return 0.5 + seed * 1.25
    if kind == "boolean":
        return seed % 2 == 1 if in_sequence else True  # a lone False would equal the default
    if kind == "string":
        return f"value-{seed}"
    if kind.startswith("uint") or kind.startswith("int") or kind in ("octet", "byte"):
        return seed % 200 + 1
    raise TypeError(kind)


def _message_class(type_name: str):
    package, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def fill(msg, seed: int = 1):
    for position, (field, kind) in enumerate(msg.get_fields_and_field_types().items()):
        value_seed = seed * 31 + position
        if kind.startswith("sequence<"):
            inner = kind[len("sequence<"):-1]
            length = 3 + value_seed % 4
            values = [_scalar(inner, value_seed + i, True) for i in range(length)]
            if inner in ARRAY_CODES:
                values = array.array(ARRAY_CODES[inner], values)
            setattr(msg, field, values)
        elif kind.endswith("]"):  # a fixed-size array, e.g. double[3]
            inner, size = kind[:-1].split("[")
            setattr(msg, field, [_scalar(inner, value_seed + i, True) for i in range(int(size))])
        elif "/" in kind:
            setattr(msg, field, fill(_message_class(kind)(), value_seed))
        else:
            setattr(msg, field, _scalar(kind, value_seed))
    return msg


def make(name: str, seed: int = 1):
    import kuavo_msgs.msg as msgs
    return fill(getattr(msgs, name)(), seed)
