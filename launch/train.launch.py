"""Train through the pipeline: env node, actor and learner (and optionally the VR teleop node).

    ros2 launch kuavo_rl train.launch.py                          # toy task, 14-dim, MSE, lerobot SAC
    ros2 launch kuavo_rl train.launch.py algo:=sb3_sac set:="run.total_env_steps=3000 env.action_dim=6"
    ros2 launch kuavo_rl train.launch.py env:=pick_lift vr:=true  # grasp-and-lift sim, Quest takeovers

Without `ros2 launch` (PyPI-wheel installs): `kuavo-rl train` runs the same nodes with the same
parameters (both follow kuavo_rl.launch_plan). The launch ends when the actor has finished its env
steps and final evaluation.
"""
from launch.actions import (DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler,
                            SetEnvironmentVariable)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch_ros.actions import Node

from kuavo_rl.config import VR_SOURCES
from kuavo_rl.envs.registry import ENVS
from kuavo_rl.launch_plan import (default_config_path, discovery_environment, fresh_run_dir, node_parameters,
                                  plan_nodes, prepare_run, vr_overrides)
from launch import LaunchDescription


def nodes(context):
    arg = lambda name: context.launch_configurations[name]  # noqa: E731
    env, vr = arg("env"), arg("vr").lower() in ("true", "1", "yes")
    if env not in ENVS:
        raise ValueError(f"env:={env} is not one of {', '.join(ENVS)}")
    overrides = arg("set").split()
    if arg("algo"):
        overrides.append(f"algo.backend={arg('algo')}")
    if vr:
        overrides += vr_overrides(arg("vr_source"), arg("vr_replay_file"))
    run_dir = arg("run_dir") or fresh_run_dir()
    prepare_run(run_dir)  # the run key that signs every message between the nodes
    parameters = node_parameters(arg("config") or default_config_path(env), overrides, run_dir)
    # Nodes exit on their own well within launch's 5 s after SIGINT (the learner checkpoints first).
    launched = {spec.role: Node(package=spec.package, executable=spec.executable, name=spec.node_name,
                                output="screen", parameters=[parameters])
                for spec in plan_nodes(vr)}
    actor_done = RegisterEventHandler(OnProcessExit(
        target_action=launched["actor"], on_exit=[EmitEvent(event=Shutdown(reason="actor finished"))]))
    discovery = [SetEnvironmentVariable(name, value) for name, value in discovery_environment().items()]
    return [*discovery, *launched.values(), actor_done]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="", description="experiment YAML; empty = the env's default"),
        DeclareLaunchArgument("env", default_value="toy", description=" | ".join(
            f"{e.name} ({e.description})" for e in ENVS.values())),
        DeclareLaunchArgument("algo", default_value="", description="lerobot_sac or sb3_sac; empty = the config's"),
        DeclareLaunchArgument("vr", default_value="false", description="start the VR teleop node"),
        DeclareLaunchArgument("vr_source", default_value="openxr", description=" | ".join(VR_SOURCES)),
        DeclareLaunchArgument("vr_replay_file", default_value="", description="recording for vr_source:=replay"),
        DeclareLaunchArgument("set", default_value="", description="space-separated section.key=value overrides"),
        DeclareLaunchArgument("run_dir", default_value="", description="logs, checkpoints and the run key; "
                              "empty = a new runs/launch-<time> (an existing directory is resumed)"),
        OpaqueFunction(function=nodes),
    ])
