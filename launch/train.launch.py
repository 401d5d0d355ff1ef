"""Train through the pipeline: env node, actor and learner (and optionally the VR teleop node).

    ros2 launch kuavo_rl train.launch.py                          # toy task, 14-dim, MSE, lerobot SAC
    ros2 launch kuavo_rl train.launch.py algo:=sb3_sac set:="run.total_env_steps=3000 env.action_dim=6"
    ros2 launch kuavo_rl train.launch.py env:=sim vr:=true        # pick-lift simulator, Quest takeovers

Without `ros2 launch` (PyPI-wheel installs): `kuavo-rl train` runs the same nodes with the same
parameters. The launch ends when the actor has finished its env steps and final evaluation.
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch_ros.actions import Node

DEFAULT_CONFIGS = {"toy": "toy_mse.yaml", "sim": "sim_pick_lift.yaml"}
VR_MAPPINGS = {"toy": "toy", "sim": "ee_delta"}


def nodes(context):
    arg = lambda name: context.launch_configurations[name]  # noqa: E731
    env = arg("env")
    if env not in DEFAULT_CONFIGS:
        raise ValueError(f"env:={env} is not one of {sorted(DEFAULT_CONFIGS)}")
    config = arg("config") or str(Path(get_package_share_directory("kuavo_rl")) / "config" / DEFAULT_CONFIGS[env])
    overrides = arg("set").split()
    if arg("algo"):
        overrides.append(f"algo.backend={arg('algo')}")
    shared = {"config_file": config, "overrides": overrides or [""]}
    run_dir = arg("run_dir") or "runs/launch"
    actor = Node(package="kuavo_rl", executable="actor_node", name="kuavo_actor", output="screen",
                 parameters=[shared, {"summary_file": str(Path(run_dir) / "actor_summary.yaml")}])
    launched = [
        Node(package="kuavo_rl", executable="learner_node", name="kuavo_learner", output="screen",
             parameters=[shared, {"run_dir": run_dir}]),
        Node(package="kuavo_rl", executable="env_node", name="kuavo_env", output="screen", parameters=[shared]),
        actor,
        RegisterEventHandler(OnProcessExit(target_action=actor, on_exit=[EmitEvent(event=Shutdown(reason="actor finished"))])),
    ]
    if arg("vr").lower() in ("true", "1", "yes"):
        launched.append(Node(package="kuavo_vr_teleop", executable="vr_teleop_node", name="vr_teleop", output="screen",
                             parameters=[{"source": arg("vr_source"), "replay_file": arg("vr_replay_file"),
                                          "mapping": VR_MAPPINGS[env],
                                          "action_dim": int(arg("vr_action_dim"))}]))
    return launched


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="", description="experiment YAML; empty = the env's default"),
        DeclareLaunchArgument("env", default_value="toy", description="toy (target-action task) or sim (pick-lift)"),
        DeclareLaunchArgument("algo", default_value="", description="lerobot_sac or sb3_sac; empty = the config's"),
        DeclareLaunchArgument("vr", default_value="false", description="start the VR teleop node"),
        DeclareLaunchArgument("vr_source", default_value="openxr", description="openxr, replay or none"),
        DeclareLaunchArgument("vr_replay_file", default_value="", description="recording for vr_source:=replay"),
        DeclareLaunchArgument("vr_action_dim", default_value="0", description="0 = the mapping's own size"),
        DeclareLaunchArgument("set", default_value="", description="space-separated section.key=value overrides"),
        DeclareLaunchArgument("run_dir", default_value="", description="logs and checkpoints (default runs/launch)"),
        OpaqueFunction(function=nodes),
    ])
