"""The launch files' one implementation (launch/train.launch.py, robot.launch.py, learner.launch.py):
the nodes of launch_plan.py for one machine or one side of two, with the experiment's parameters.
Imports `launch`, so only launch files import this module."""
from __future__ import annotations

from launch.actions import (DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler,
                            SetEnvironmentVariable)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch_ros.actions import Node

from kuavo_rl.config import VR_SOURCES, load_config
from kuavo_rl.envs.registry import ENVS
from kuavo_rl.launch_plan import (default_config_path, discovery_environment, fresh_run_dir, needs_simulator_node,
                                  node_parameters, plan_nodes, prepare_run, side_overrides, vr_overrides)
from launch import LaunchDescription


def _flag(value: str) -> bool:
    return value.lower() in ("true", "1", "yes")


def _nodes(context, side: str):  # side: all | robot | learner (launch_plan.SIDES)
    arg = lambda name: context.launch_configurations[name]  # noqa: E731
    env = arg("env")
    if env not in ENVS:
        raise ValueError(f"env:={env} is not one of {', '.join(ENVS)}")
    vr = side != "learner" and _flag(arg("vr"))
    overrides = arg("set").split() + side_overrides(side)
    if arg("algo"):
        overrides.append(f"algo.backend={arg('algo')}")
    if vr:
        overrides += vr_overrides(arg("vr_source"), arg("vr_replay_file"))
    config_file = arg("config") or default_config_path(env)
    cfg = load_config(config_file, overrides, pipeline=True)  # a configuration error stops the launch here
    run_dir = arg("run_dir") or fresh_run_dir()
    # The run key that signs every message between the nodes: the robot side needs the learner side's copy.
    prepare_run(run_dir, cfg.run.key_file, side)
    parameters = node_parameters(config_file, overrides, run_dir)
    # Nodes exit on their own well within launch's 5 s after SIGINT (the learner checkpoints first).
    launched = {spec.role: Node(package=spec.package, executable=spec.executable, name=spec.node_name,
                                output="screen", parameters=[parameters])
                for spec in plan_nodes(vr, needs_simulator_node(cfg), side)}
    discovery = [SetEnvironmentVariable(name, value) for name, value in discovery_environment(side).items()]
    ends = []
    if "actor" in launched:  # the run ends when the actor has finished its env steps and final evaluation
        ends.append(RegisterEventHandler(OnProcessExit(
            target_action=launched["actor"], on_exit=[EmitEvent(event=Shutdown(reason="actor finished"))])))
    return [*discovery, *launched.values(), *ends]


def describe(side: str) -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("config", default_value="", description="experiment YAML; empty = the env's default"),
        DeclareLaunchArgument("env", default_value="toy", description=" | ".join(
            f"{e.name} ({e.description})" for e in ENVS.values())),
        DeclareLaunchArgument("algo", default_value="", description="lerobot_sac or sb3_sac; empty = the config's"),
        DeclareLaunchArgument("set", default_value="", description="space-separated section.key=value overrides"),
        DeclareLaunchArgument("run_dir", default_value="", description="logs, checkpoints and the run key; "
                              "empty = a new runs/launch-<time> (an existing directory is resumed)"),
    ]
    if side != "learner":
        arguments += [
            DeclareLaunchArgument("vr", default_value="false", description="start the VR teleop node"),
            DeclareLaunchArgument("vr_source", default_value="openxr", description=" | ".join(VR_SOURCES)),
            DeclareLaunchArgument("vr_replay_file", default_value="", description="recording for vr_source:=replay"),
        ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes, kwargs={"side": side})])
