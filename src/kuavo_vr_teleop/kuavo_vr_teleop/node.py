"""ROS 2 shell: experiment config (`vr` section) -> source + mapping + core; a timer publishes
Intervention messages, and EpisodeLabel messages when the operator labels an episode.

Every setting is a key of the experiment configuration (kuavo_rl.config.VrConfig); the node's only
ROS parameters are the experiment file and its `section.key=value` overrides, as for every kuavo_rl
node. A setting the node cannot honour (unknown mapping, a mapping whose action size is not the
env's, an unknown controller input) stops start-up with exit code 2 and a message naming the key.

All decisions live in the pure modules; the timer only polls the supervisor, runs the core
and publishes. The core runs on time.monotonic (not ROS time) so that staleness still works
with use_sim_time.
"""

from __future__ import annotations

import time

from rclpy.node import Node

from kuavo_msgs.msg import EpisodeLabel, Intervention
from kuavo_rl import qos, topics
from kuavo_rl.codec import label_to_msg
from kuavo_rl.config import ConfigError, ExperimentConfig, VrConfig
from kuavo_rl.envs import env_spec
from kuavo_rl.nodes.common import load_node_config, run_node
from kuavo_rl.nodes.guard import Guard
from kuavo_rl.protocol import LABEL_NAMES, EpisodeLabelInput

from .controller import ControllerFrame
from .mapping import MAPPINGS, Mapping, make_mapping
from .openxr_source import OpenXRSource
from .sources import InputSource, Recorder, ReplaySource
from .supervisor import Logs, SourceSupervisor
from .profiles import choose_bindings
from .teleop_core import Bindings, TeleopConfig, TeleopCore, TeleopOutput

INPUT_NAMES = ("trigger", "squeeze", "a", "b", "x", "y", "primary", "secondary", "thumbstick_click", "menu")


def _chord(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("+") if part.strip())


def _check_inputs(key: str, inputs: tuple[str, ...]) -> None:
    """Refuse a binding that names no input or an unknown one (it would fail on the first frame)."""
    if not inputs:
        raise ConfigError(f"{key} must name at least one controller input, e.g. right.squeeze")
    for spec in inputs:
        try:
            ControllerFrame(0.0).input_value(spec)
        except KeyError as error:
            raise ConfigError(f"{key}: '{spec}' is not a controller input ({error.args[0]}); expected "
                              f"'<left|right>.<input>' with input one of {', '.join(INPUT_NAMES)}") from None


def mapping_from_config(cfg: ExperimentConfig) -> Mapping:
    """The configured mapping (vr.mapping, else the env's), sized to the env's action."""
    name = cfg.vr_mapping
    chosen = "vr.mapping" if cfg.vr.mapping else f"vr.mapping (null: env {cfg.env.name}'s default)"
    if name not in MAPPINGS:
        raise ConfigError(f"{chosen}: unknown mapping '{name}' (known: {', '.join(MAPPINGS)})")
    scale = cfg.vr.metres_per_unit or None
    if name == "toy":  # any size: one controller channel per action dimension
        return make_mapping(name, cfg.env.action_dim, scale)
    mapping = make_mapping(name, 0, scale)
    env_dim = env_spec(cfg.env).action_dim
    if mapping.action_dim != env_dim:
        raise ConfigError(
            f"{chosen}: mapping '{name}' produces {mapping.action_dim}-dim actions, but env {cfg.env.name} "
            f"takes {env_dim} (env.action_dim); choose a mapping of that size or another env")
    return mapping


def simple_controller_bindings(vr: VrConfig) -> Bindings:
    """The controls used when the runtime binds the simple controller profile (see profiles.py)."""
    deadman = vr.simple_controller_deadman.strip()
    if deadman:
        _check_inputs("vr.simple_controller_deadman", (deadman,))
    _check_inputs("vr.simple_controller_estop_chord", _chord(vr.simple_controller_estop_chord))
    _check_inputs("vr.simple_controller_reset_chord", _chord(vr.simple_controller_reset_chord))
    return Bindings(deadman, _chord(vr.simple_controller_estop_chord), _chord(vr.simple_controller_reset_chord))


def core_from_config(cfg: ExperimentConfig) -> TeleopCore:
    """The teleop state machine as configured; raises ConfigError for settings it cannot honour."""
    vr = cfg.vr
    mapping = mapping_from_config(cfg)
    _check_inputs("vr.deadman", (vr.deadman.strip(),) if vr.deadman.strip() else ())
    _check_inputs("vr.estop_chord", _chord(vr.estop_chord))
    _check_inputs("vr.reset_chord", _chord(vr.reset_chord))
    simple_controller_bindings(vr)
    for key in ("success_button", "failure_button"):
        button = getattr(vr, key).strip()
        if button:
            _check_inputs(f"vr.{key}", (button,))
            if button == vr.deadman.strip():
                raise ConfigError(f"vr.{key}: '{button}' is the deadman; a label button must be another input")
    if vr.success_button.strip() and vr.success_button.strip() == vr.failure_button.strip():
        raise ConfigError(f"vr.success_button and vr.failure_button are both '{vr.success_button}'")
    w = vr.workspace_half_extent_m
    config = TeleopConfig(
        deadman=vr.deadman.strip(),
        estop_chord=_chord(vr.estop_chord),
        reset_chord=_chord(vr.reset_chord),
        reset_hold_s=vr.reset_hold_s,
        success_button=vr.success_button.strip(),
        failure_button=vr.failure_button.strip(),
        stale_timeout_s=vr.stale_timeout_s,
        max_delta_per_step=vr.max_delta_per_step or None,
        workspace_low=(-w, -w, -w),
        workspace_high=(w, w, w),
    )
    return TeleopCore(mapping, config)


class VrTeleopNode(Node):
    def __init__(self, **kwargs: object) -> None:
        super().__init__("vr_teleop", **kwargs)  # type: ignore[arg-type]
        self.cfg = load_node_config(self)
        self.vr: VrConfig = self.cfg.vr
        vr = self.vr
        self.core = core_from_config(self.cfg)
        c = self.core.config
        self.configured_bindings = Bindings(c.deadman, c.estop_chord, c.reset_chord, c.success_button, c.failure_button)
        self.simple_bindings = simple_controller_bindings(vr)
        self._profile: str | None = None  # the controller profile the bindings were chosen for
        log = self.get_logger()
        try:
            recorder = Recorder(vr.record_file, vr.source) if vr.record_file else None
        except OSError as error:
            raise ConfigError(f"vr.record_file: cannot write {vr.record_file}: {error}") from None
        self.supervisor = SourceSupervisor(
            factory=self._source_factory(),
            retry_period_s=vr.retry_period_s,
            logs=Logs(warn=log.warning, info=log.info, debug=log.debug),
            recorder=recorder,
        )
        self.guard = Guard(self, self.cfg, "vr")  # signs takeovers and resets: the actor obeys only these
        self.publisher = self.create_publisher(Intervention, topics.INTERVENTION, qos.INTERVENTION)
        self.label_publisher = self.create_publisher(EpisodeLabel, topics.EPISODE_LABEL, qos.EPISODE_LABEL)
        self._last_label_id = None
        self._last_reason = ""
        self.timer = self.create_timer(1.0 / vr.rate_hz, self.step)
        log.info(
            f"vr_teleop: source={vr.source} mapping={self.core.mapping.name} "
            f"action_dim={self.core.mapping.action_dim} (env {self.cfg.env.name}) "
            f"rate={vr.rate_hz:g} Hz -> {topics.INTERVENTION}"
        )

    def _source_factory(self):  # type: ignore[no-untyped-def]
        vr, log = self.vr, self.get_logger()

        def factory() -> InputSource | None:
            if vr.source == "openxr":
                return OpenXRSource(pose=vr.openxr_pose, log=log.info)
            if vr.source == "replay":
                return ReplaySource(vr.replay_file, loop=vr.replay_loop)
            return None

        return factory

    def step(self) -> None:
        """Timer body: poll -> controls for the bound profile -> core -> publish."""
        now = time.monotonic()
        frame = self.supervisor.poll(now)
        self._follow_profile(getattr(self.supervisor.source, "interaction_profile", None))
        out = self.core.update(frame, now, input_lost=not self.supervisor.connected)
        self.publisher.publish(self.guard.sign(self.to_msg(out)))
        if out.label:
            label = EpisodeLabelInput(out.label, out.label_id, self.vr.source)
            msg = label_to_msg(EpisodeLabel(), label, self.get_clock().now().to_msg())
            self.label_publisher.publish(self.guard.sign(msg))
            if out.label_id != self._last_label_id:
                self._last_label_id = out.label_id
                self.get_logger().info(f"operator labels the episode {LABEL_NAMES[out.label]}")
        if out.reason != self._last_reason:  # log transitions, not every tick
            self.get_logger().info(f"teleop: {'ACTIVE' if out.active else 'inactive'} ({out.reason})")
            self._last_reason = out.reason

    def _follow_profile(self, profile: str | None) -> None:
        """Switch the controls when the runtime binds another controller profile, and say what works."""
        if profile == self._profile:
            return
        self._profile = profile
        if not profile:  # no source, not an OpenXR one, or no controller bound yet: the configured controls
            self.core.use_bindings(self.configured_bindings)
            return
        choice = choose_bindings(profile, self.configured_bindings, self.simple_bindings, self.vr.reset_hold_s)
        self.core.use_bindings(choice.bindings)
        (self.get_logger().warning if choice.problem else self.get_logger().info)(choice.message)

    def to_msg(self, out: TeleopOutput) -> Intervention:
        msg = Intervention()
        msg.stamp = self.get_clock().now().to_msg()
        msg.active = bool(out.active)
        msg.action = [float(v) for v in out.action]
        msg.source = self.vr.source
        msg.estop = bool(out.estop)
        msg.estop_reset = bool(out.estop_reset)
        return msg

    def close(self) -> None:
        """Close the input source and the recording (run_node calls this on SIGINT/SIGTERM)."""
        self.supervisor.close()


def main(args: list[str] | None = None) -> None:
    raise SystemExit(run_node(VrTeleopNode, args))


if __name__ == "__main__":
    main()
