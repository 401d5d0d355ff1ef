"""Which nodes a training run starts, and with which parameters: one plan that `kuavo-rl train`
(through supervisor.py, no `ros2 launch` needed) and `ros2 launch kuavo_rl train.launch.py` both
execute. Every node gets the same two parameters, the experiment file and its overrides; every
tunable is a key of that file (config.py), so nodes never disagree about the experiment."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from kuavo_rl.auth import AuthError, key_path, load_or_create_key
from kuavo_rl.config import ConfigError
from kuavo_rl.envs.registry import ENVS


@dataclass(frozen=True)
class NodeSpec:
    role: str  # env | learner | actor | vr
    package: str
    executable: str  # console script (ros2 run / launch)
    module: str  # the same entry point as `python -m` (the supervisor)
    node_name: str


NODES: dict[str, NodeSpec] = {spec.role: spec for spec in (
    NodeSpec("learner", "kuavo_rl", "learner_node", "kuavo_rl.nodes.learner_node", "kuavo_learner"),
    NodeSpec("env", "kuavo_rl", "env_node", "kuavo_rl.nodes.env_node", "kuavo_env"),
    NodeSpec("actor", "kuavo_rl", "actor_node", "kuavo_rl.nodes.actor_node", "kuavo_actor"),
    NodeSpec("vr", "kuavo_vr_teleop", "vr_teleop_node", "kuavo_vr_teleop.node", "vr_teleop"),
    NodeSpec("kuavo_sim", "kuavo_rl", "kuavo_sim_node", "kuavo_rl.nodes.kuavo_sim_node", "kuavo_sim"),
)}


def default_config_path(env: str = "toy") -> str | None:
    """The env's default experiment file: in the checkout, else in the installed share/kuavo_rl."""
    if env not in ENVS:
        raise ValueError(f"unknown env '{env}' (known: {', '.join(ENVS)})")
    relative = ENVS[env].default_config
    if Path(relative).is_file():
        return relative
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return None
    try:
        candidate = Path(get_package_share_directory("kuavo_rl")) / relative
    except LookupError:  # PackageNotFoundError: kuavo_rl is not installed in an ament prefix
        return None
    return str(candidate) if candidate.is_file() else None


def vr_overrides(source: str, replay_file: str = "") -> list[str]:
    """The `vr.*` overrides for a teleop source chosen on the command line; a recording loops."""
    overrides = [f"vr.source={source}"]
    if replay_file:
        overrides += [f"vr.replay_file={Path(replay_file).resolve()}", "vr.replay_loop=true"]
    return overrides


def node_parameters(config_file: str | None, overrides: list[str], run_dir: str | Path) -> dict:
    """The two parameters every node reads (nodes/common.py); the run directory is an override."""
    return {"config_file": str(Path(config_file).resolve()) if config_file else "",
            "overrides": [*overrides, f"run.run_dir={Path(run_dir).resolve()}"]}


def needs_simulator_node(cfg) -> bool:
    """The simulated Kuavo runs as its own node unless the bridge holds it in-process."""
    return ENVS[cfg.env.name].simulator_node and cfg.env.kuavo.link == "ros2"


SIDES = ("all", "robot", "learner")  # one machine; the robot PC's nodes; the training workstation's


def plan_nodes(vr: bool, simulator: bool = False, side: str = "all") -> list[NodeSpec]:
    """Start order: the learner first (it owns the checkpoints), the simulated robot before the env
    bridge that drives it, the actor last (it ends the run). Two machines: `robot` runs everything
    but the learner, `learner` runs the learner alone (same ROS_DOMAIN_ID, same run key)."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got '{side}'")
    roles = ["learner", *(["kuavo_sim"] if simulator else []), "env", *(["vr"] if vr else []), "actor"]
    if side == "robot":
        roles.remove("learner")
    elif side == "learner":
        roles = ["learner"]
    return [NODES[role] for role in roles]


def fresh_run_dir(prefix: str = "runs/launch") -> str:
    """A new run directory per launch, so a second launch never resumes (or collides with) the last."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def side_overrides(side: str) -> list[str]:
    """The learner side of two machines ends by itself once the robot side's actor has finished."""
    return ["learner.stop_when_actors_finish=true"] if side == "learner" else []


def prepare_run(run_dir: str | Path, key_file: str = "", side: str = "all") -> Path:
    """Create the run directory and its run key (owner-only) before any node starts. The robot side of
    two machines never creates a key: it must sign with the learner side's, copied over, or each side
    would refuse everything the other sends."""
    path = key_path(run_dir, key_file)
    if side == "robot" and not path.is_file():
        raise ConfigError(f"no run key at {path}: the robot side signs with the learner side's key; copy the "
                          f"workstation's <run_dir>/run.key there first (or set run.key_file)")
    try:
        load_or_create_key(path)
    except AuthError as error:  # e.g. a copy readable by others: say so before any node starts
        raise ConfigError(str(error)) from None
    return path


# Where DDS discovery looks unless ROS_AUTOMATIC_DISCOVERY_RANGE is set: one machine keeps a run
# invisible to other ROS users of the network; each side of two machines must find the other.
DISCOVERY_RANGE = {"all": "LOCALHOST", "robot": "SUBNET", "learner": "SUBNET"}


def discovery_environment(side: str = "all") -> dict[str, str]:
    """The discovery range the nodes run with: the user's choice, else the side's default."""
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", DISCOVERY_RANGE[side])}
