"""Run the pipeline's nodes as separate processes (real DDS between them) without `ros2 launch`:
the same nodes and parameters that train.launch.py starts (launch_plan.py)."""
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

from kuavo_rl.launch_plan import NODES, discovery_environment, node_parameters, plan_nodes, prepare_run


def write_params_file(path: Path, config_file: str | None, overrides: list[str], run_dir: str | Path) -> Path:
    """A ROS parameters file with the experiment parameters every node reads."""
    params = {"/**": {"ros__parameters": node_parameters(config_file, overrides, run_dir)}}
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


def start_node(role: str, params_file: Path, log_dir: Path, echo: bool, env: dict | None = None,
               extra_args: tuple[str, ...] = ()) -> NodeProcess:
    command = [sys.executable, "-u", "-m", NODES[role].module, "--ros-args", "--params-file", str(params_file),
               *extra_args]
    log_dir.mkdir(parents=True, exist_ok=True)
    popen = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, **discovery_environment(), **(env or {})}, start_new_session=True)
    node = NodeProcess(role, popen, log_dir / f"{role}.log", echo)
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


class StopOnSignal:
    """SIGINT (Ctrl-C) and SIGTERM (kill, a service manager) stop the nodes cleanly: the first raises
    KeyboardInterrupt in the waiting loop; later ones, while the nodes stop, are only reported. The
    nodes run in their own sessions (out of reach of the terminal's Ctrl-C), so the supervisor must
    never exit without stopping them. Set explicitly: a process started in the background by a
    shell inherits SIGINT ignored."""

    def __enter__(self):
        self.fired = False
        main = threading.current_thread() is threading.main_thread()
        self.previous = {signum: signal.signal(signum, self._handle) for signum in (signal.SIGINT, signal.SIGTERM)
                         } if main else {}
        return self

    def _handle(self, signum, frame):
        if self.fired:
            print(f"[kuavo-rl] signal {signum}: still stopping the nodes", file=sys.stderr)
            return
        self.fired = True
        raise KeyboardInterrupt

    def __exit__(self, *exc_info):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _wait_for_run(nodes: dict[str, NodeProcess], final: str, timeout_s: float) -> str | None:
    """Until the `final` node exits; the failure, if any: another node exited, the time ran out, or
    the final node exited non-zero."""
    deadline = time.monotonic() + timeout_s
    while nodes[final].popen.poll() is None:
        for name in [n for n in nodes if n != final]:
            code = nodes[name].popen.poll()
            if code is not None:
                return f"{name} exited with code {code}; see {nodes[name].log_path}"
        if time.monotonic() > deadline:
            return f"timed out after {timeout_s:.0f} s"
        time.sleep(0.2)
    code = nodes[final].popen.returncode
    return f"{final} exited with code {code}; see {nodes[final].log_path}" if code != 0 else None


def run_pipeline(run_dir: Path, config_file: str | None, overrides: list[str], timeout_s: float,
                 quiet: bool = False, vr: bool = False, simulator: bool = False, side: str = "all",
                 key_file: str = "") -> dict:
    """Start learner, (the simulated Kuavo,) env (and the VR teleop node), actor; wait for the actor
    to finish; stop the others cleanly. `overrides` include the VR settings (`vr.*`) when `vr` is set.
    Two machines: side `robot` runs all but the learner and ends with the actor; side `learner` runs
    the learner alone, which ends once the actors have finished (or on Ctrl-C)."""
    run_dir = Path(run_dir)
    if quiet:
        overrides = [*overrides, "run.progress_line=false"]
    params = write_params_file(run_dir / "node_params.yaml", config_file, overrides, run_dir)
    prepare_run(run_dir, key_file, side)
    log_dir = run_dir / "logs"
    plan = plan_nodes(vr, simulator, side)
    final = "actor" if any(spec.role == "actor" for spec in plan) else "learner"  # its exit ends the run
    discovery = discovery_environment(side)
    nodes: dict[str, NodeProcess] = {}
    failure = None
    with StopOnSignal():
        try:
            for spec in plan:
                nodes[spec.role] = start_node(spec.role, params, log_dir, echo=spec.role == final and not quiet,
                                              env=discovery)
            failure = _wait_for_run(nodes, final, timeout_s)
        except KeyboardInterrupt:
            # The learner side's usual other end (it did not see the actors finish: the link was down
            # at the end, say); the run is still summarised. Elsewhere, the run stops unfinished.
            print("[kuavo-rl] interrupted: stopping the nodes (the learner saves a checkpoint first)",
                  file=sys.stderr)
            failure = None if final == "learner" else "interrupted before the actor finished"
        finally:
            # Reverse start order: the actor first, the env bridge before the robot it drives (it hands the
            # arms back through the robot's mode service), the learner last (its final checkpoint).
            codes = {name: stop_node(nodes[name]) for name in reversed(list(nodes))}
    if failure:
        tail = "".join(nodes[failure.split()[0]].lines[-20:]) if failure.split()[0] in nodes else ""
        raise PipelineFailed(f"{failure}\n{tail}")
    return codes
