"""Run the pipeline's nodes as separate processes (real DDS between them) without `ros2 launch`:
the same node executables and parameters that train.launch.py uses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

NODE_MODULES = {"env": "kuavo_rl.nodes.env_node", "actor": "kuavo_rl.nodes.actor_node",
                "learner": "kuavo_rl.nodes.learner_node", "vr": "kuavo_vr_teleop.node"}
# The VR mapping that produces each env's action space.
VR_MAPPINGS = {"toy": "toy", "pick_lift": "ee_delta"}


def write_params_file(path: Path, config_file: str | None, overrides: list[str], extra: dict[str, dict]) -> Path:
    """A ROS parameters file: shared experiment parameters for every node, plus per-node ones."""
    params = {"/**": {"ros__parameters": {"config_file": str(Path(config_file).resolve()) if config_file else "",
                                           "overrides": list(overrides) or [""]}}}
    for node_name, values in extra.items():
        params[f"/{node_name}"] = {"ros__parameters": values}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params))
    return path


@dataclass
class NodeProcess:
    name: str
    popen: subprocess.Popen
    log_path: Path
    echo: bool
    thread: threading.Thread | None = None
    lines: list[str] = field(default_factory=list)

    def pump(self) -> None:
        with self.log_path.open("a") as log:
            for line in self.popen.stdout:
                log.write(line)
                log.flush()
                self.lines.append(line)
                del self.lines[:-200]
                if self.echo or "ERROR" in line or "FATAL" in line or "WARN" in line or "error" in line:
                    sys.stderr.write(f"[{self.name}] {line}" if not line.startswith("[") else line)
                    sys.stderr.flush()


def start_node(name: str, params_file: Path, log_dir: Path, echo: bool, env: dict | None = None,
               extra_args: tuple[str, ...] = ()) -> NodeProcess:
    command = [sys.executable, "-u", "-m", NODE_MODULES[name], "--ros-args", "--params-file", str(params_file),
               *extra_args]
    log_dir.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, **(env or {})}, start_new_session=True)
    node = NodeProcess(name, popen, log_dir / f"{name}.log", echo)
    node.thread = threading.Thread(target=node.pump, daemon=True)
    node.thread.start()
    return node


def stop_node(node: NodeProcess, timeout_s: float = 60.0) -> int:
    """SIGINT (the node saves and closes), then SIGKILL if it does not exit in time."""
    if node.popen.poll() is None:
        node.popen.send_signal(signal.SIGINT)
        try:
            node.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            node.popen.kill()
            node.popen.wait()
    if node.thread is not None:
        node.thread.join(timeout=5.0)
    return node.popen.returncode


class PipelineFailed(RuntimeError):
    pass


def run_pipeline(run_dir: Path, config_file: str | None, overrides: list[str], timeout_s: float,
                 quiet: bool = False, vr: dict | None = None) -> dict:
    """Start env, learner, actor (and the VR teleop node with parameters `vr`); wait for the actor
    to finish; stop the others cleanly."""
    run_dir = Path(run_dir)
    per_node = {
        "kuavo_learner": {"run_dir": str(run_dir.resolve()), "quiet": quiet},
        "kuavo_actor": {"summary_file": str((run_dir / "actor_summary.yaml").resolve())},
    }
    if vr is not None:
        per_node["vr_teleop"] = vr
    params = write_params_file(run_dir / "node_params.yaml", config_file, overrides, per_node)
    log_dir = run_dir / "logs"
    nodes = {"learner": start_node("learner", params, log_dir, echo=not quiet)}
    nodes["env"] = start_node("env", params, log_dir, echo=False)
    if vr is not None:
        nodes["vr"] = start_node("vr", params, log_dir, echo=False)
    nodes["actor"] = start_node("actor", params, log_dir, echo=False)
    deadline = time.monotonic() + timeout_s
    failure = None
    try:
        while nodes["actor"].popen.poll() is None:
            for name in [n for n in nodes if n != "actor"]:
                code = nodes[name].popen.poll()
                if code is not None:
                    failure = f"{name} exited with code {code}; see {nodes[name].log_path}"
                    break
            if failure:
                break
            if time.monotonic() > deadline:
                failure = f"timed out after {timeout_s:.0f} s"
                break
            time.sleep(0.2)
        if failure is None and nodes["actor"].popen.returncode != 0:
            failure = f"actor exited with code {nodes['actor'].popen.returncode}; see {nodes['actor'].log_path}"
    finally:
        codes = {name: stop_node(node) for name, node in sorted(nodes.items(), key=lambda kv: kv[0] == "learner")}
    if failure:
        tail = "".join(nodes[failure.split()[0]].lines[-20:]) if failure.split()[0] in nodes else ""
        raise PipelineFailed(f"{failure}\n{tail}")
    return codes
