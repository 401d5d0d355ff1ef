"""The envs the stack can serve, in one table that the config schema, the CLI, the supervisor and
train.launch.py all read: each env's default experiment file and the VR mapping that produces its
action space. Pure data, no imports, so that anything can read it cheaply."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvEntry:
    name: str  # env.name in the experiment YAML, --env of the CLI, env:= of the launch file
    default_config: str  # relative to the checkout (and to share/kuavo_rl once installed)
    vr_mapping: str  # the kuavo_vr_teleop mapping whose actions this env takes
    description: str
    simulator_node: bool = False  # the pipeline also starts the kuavo_sim node (the simulated robot)


ENVS: dict[str, EnvEntry] = {entry.name: entry for entry in (
    EnvEntry("toy", "config/toy_mse.yaml", "toy", "output the target action (the diagnostic task)"),
    EnvEntry("pick_lift", "config/sim_pick_lift.yaml", "ee_delta",
             "MuJoCo Panda grasp-and-lift, end-effector deltas + gripper"),
    EnvEntry("kuavo_sim", "config/kuavo_sim_box_lift.yaml", "kuavo_ee_delta",
             "the simulated Kuavo (MuJoCo) through the Kuavo bridge: dual-arm box lift", simulator_node=True),
    EnvEntry("kuavo", "config/kuavo_box_lift.yaml", "kuavo_ee_delta",
             "a real Kuavo through the Kuavo bridge (Leju's topics): dual-arm box lift"),
)}
