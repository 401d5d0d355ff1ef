"""ROS 2 shell: parameters -> source + mapping + core; a timer publishes Intervention messages.

All decisions live in the pure modules; the timer only polls the supervisor, runs the core
and publishes. The core runs on time.monotonic (not ROS time) so that staleness still works
with use_sim_time.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from kuavo_msgs.msg import Intervention

from .mapping import MAPPINGS, make_mapping
from .openxr_source import OpenXRSource
from .sources import InputSource, Recorder, ReplaySource
from .supervisor import Logs, SourceSupervisor
from .teleop_core import TeleopConfig, TeleopCore, TeleopOutput

INTERVENTION_TOPIC = "/kuavo_rl/intervention"
# Only the newest intervention matters, but it must not be dropped silently on a lossy link.
INTERVENTION_QOS = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1)
SOURCES = ("openxr", "replay", "none")


@dataclass(frozen=True)
class NodeParams:
    source: str
    replay_file: str
    replay_loop: bool
    mapping: str
    action_dim: int
    rate_hz: float
    stale_timeout_s: float
    record_file: str
    retry_period_s: float
    deadman: str
    estop_chord: str
    reset_chord: str
    reset_hold_s: float
    max_delta_per_step: float
    workspace_half_extent_m: float
    metres_per_unit: float
    openxr_pose: str


# name -> (default, description)
PARAMETERS: dict[str, tuple[object, str]] = {
    "source": ("openxr", f"input source: one of {SOURCES} ('none' publishes inactive only)"),
    "replay_file": ("", "recording (JSON lines) to replay when source is 'replay'"),
    "replay_loop": (False, "restart the replay at its end"),
    "mapping": ("ee_delta", f"controller -> action mapping: one of {MAPPINGS}"),
    "action_dim": (0, "action size; 0 = the mapping's own (toy needs it; others must match)"),
    "rate_hz": (50.0, "publish rate; the source is polled at this rate"),
    "stale_timeout_s": (0.3, "release takeover when no new controller frame for this long"),
    "record_file": ("", "if set, record every controller frame to this JSON-lines file"),
    "retry_period_s": (5.0, "retry opening an unavailable source (e.g. no OpenXR runtime) this often"),
    "deadman": ("right.squeeze", "deadman/clutch input '<hand>.<input>' held above 0.5"),
    "estop_chord": ("left.x+left.y", "inputs pressed together that latch the e-stop"),
    "reset_chord": ("right.a+right.b", "inputs held together for reset_hold_s to clear the e-stop"),
    "reset_hold_s": (1.0, "how long the reset chord must be held"),
    "max_delta_per_step": (0.0, "max change of each action value per update; 0 = 10% of its range"),
    "workspace_half_extent_m": (0.5, "controller displacement from the engage pose is clamped to +-this"),
    "metres_per_unit": (0.0, "controller metres per action unit (toy/ee_delta); 0 = mapping default"),
    "openxr_pose": ("grip", "which controller pose to track: grip or aim"),
}


def _chord(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("+") if part.strip())


def core_from_params(p: NodeParams) -> TeleopCore:
    mapping = make_mapping(p.mapping, p.action_dim, p.metres_per_unit or None)
    w = p.workspace_half_extent_m
    config = TeleopConfig(
        deadman=p.deadman,
        estop_chord=_chord(p.estop_chord),
        reset_chord=_chord(p.reset_chord),
        reset_hold_s=p.reset_hold_s,
        stale_timeout_s=p.stale_timeout_s,
        max_delta_per_step=p.max_delta_per_step or None,
        workspace_low=(-w, -w, -w),
        workspace_high=(w, w, w),
    )
    return TeleopCore(mapping, config)


class VrTeleopNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("vr_teleop", **kwargs)  # type: ignore[arg-type]
        self.params = self._declare_parameters()
        p = self.params
        if p.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {p.source!r}")
        self.core = core_from_params(p)
        log = self.get_logger()
        recorder = Recorder(p.record_file, p.source) if p.record_file else None
        self.supervisor = SourceSupervisor(
            factory=self._source_factory(),
            retry_period_s=p.retry_period_s,
            logs=Logs(warn=log.warning, info=log.info, debug=log.debug),
            recorder=recorder,
        )
        self.publisher = self.create_publisher(Intervention, INTERVENTION_TOPIC, INTERVENTION_QOS)
        self._last_reason = ""
        self.timer = self.create_timer(1.0 / p.rate_hz, self.step)
        log.info(
            f"vr_teleop: source={p.source} mapping={p.mapping} action_dim={self.core.mapping.action_dim} "
            f"rate={p.rate_hz:g} Hz -> {INTERVENTION_TOPIC}"
        )

    def _declare_parameters(self) -> NodeParams:
        values = {}
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
            values[name] = self.get_parameter(name).value
        return NodeParams(**values)  # type: ignore[arg-type]

    def _source_factory(self):  # type: ignore[no-untyped-def]
        p, log = self.params, self.get_logger()

        def factory() -> InputSource | None:
            if p.source == "openxr":
                return OpenXRSource(pose=p.openxr_pose, log=log.info)
            if p.source == "replay":
                return ReplaySource(p.replay_file, loop=p.replay_loop)
            return None

        return factory

    def step(self) -> None:
        """Timer body: poll -> core -> publish."""
        now = time.monotonic()
        out = self.core.update(self.supervisor.poll(now), now)
        self.publisher.publish(self.to_msg(out))
        if out.reason != self._last_reason:  # log transitions, not every tick
            self.get_logger().info(f"teleop: {'ACTIVE' if out.active else 'inactive'} ({out.reason})")
            self._last_reason = out.reason

    def to_msg(self, out: TeleopOutput) -> Intervention:
        msg = Intervention()
        msg.stamp = self.get_clock().now().to_msg()
        msg.active = bool(out.active)
        msg.action = [float(v) for v in out.action]
        msg.source = self.params.source
        msg.estop = bool(out.estop)
        return msg

    def destroy_node(self) -> None:
        self.supervisor.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = VrTeleopNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
