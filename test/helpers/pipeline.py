"""Helpers for tests that run the real pipeline (separate node processes over DDS)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "toy_mse.yaml"
# 2-dim toy task with a non-zero target: lerobot's actor starts near action 0, so a zero target
# would be "solved" before any learning and the test could not fail.
TWO_DIM = ["env.action_dim=2", "env.target=0.5", "algo.learning_starts=400"]


def train_cli(run_dir: Path, overrides: list[str], timeout_s: float = 900.0) -> dict:
    command = [sys.executable, "-m", "kuavo_rl.cli", "train", "--config", str(CONFIG), "--run-dir", str(run_dir),
               "--quiet", "--timeout", str(timeout_s)]
    for override in overrides:
        command += ["--set", override]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s + 60)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return yaml.safe_load((run_dir / "result.yaml").read_text())


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def start_toy_node(role: str, run_dir: Path, overrides: list[str], config: Path = CONFIG):
    """One node of the toy pipeline (or of `config`'s) as its own process (plus `overrides`), logging to
    run_dir/logs."""
    from kuavo_rl.supervisor import start_node, write_params_file
    params = write_params_file(run_dir / "params.yaml", str(config), overrides, run_dir)
    return start_node(role, params, run_dir / "logs", echo=False)


def probe_node(context, name: str):
    """A node in the test process, and the executor that spins it."""
    import rclpy
    node = rclpy.create_node(name, context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return node, executor
