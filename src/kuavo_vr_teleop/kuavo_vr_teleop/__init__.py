"""VR teleoperation for kuavo_rl: OpenXR/replay/scripted input -> safe, mapped intervention actions.

Pure modules (no rclpy): controller, sources, openxr_source, safety, mapping, teleop_core,
supervisor. The ROS shell is node.py.
"""

from .controller import ControllerFrame, HandState
from .mapping import EndEffectorDeltaMapping, KuavoArmsMapping, ToyAxesMapping, make_mapping
from .teleop_core import TeleopConfig, TeleopCore, TeleopOutput

__all__ = [
    "ControllerFrame",
    "HandState",
    "EndEffectorDeltaMapping",
    "KuavoArmsMapping",
    "ToyAxesMapping",
    "make_mapping",
    "TeleopConfig",
    "TeleopCore",
    "TeleopOutput",
]
