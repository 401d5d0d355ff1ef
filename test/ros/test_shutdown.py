"""Every node leaves on its own, promptly and with exit code 0, after SIGINT (what `ros2 launch` sends
on Ctrl-C and when the actor has finished), also on a busy machine: launch escalates to SIGTERM
after its SIGINT timeout (5 s by default) and reports the node as failed to terminate."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import rclpy

import kuavo_msgs.msg as msgs
from helpers.pipeline import CONFIG, wait_for
from kuavo_rl import qos, topics

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

EXIT_LIMIT_S = 5.0  # launch's default sigterm_timeout


def busy_processes(count: int) -> list[subprocess.Popen]:
    """CPU load: one spinning interpreter per core."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def interrupt_and_time(processes: dict[str, subprocess.Popen], limit_s: float,
                       again: tuple[str, ...] = ()) -> dict[str, tuple[int | None, float]]:
    """SIGINT to every process at once (as launch does), a second signal to `again` shortly after;
    returns name -> (exit code or None if still running after `limit_s`, seconds to exit)."""
    start = time.monotonic()
    for process in processes.values():
        process.send_signal(signal.SIGINT)
    exits: dict[str, tuple[int | None, float]] = {}
    seconded = False
    while len(exits) < len(processes) and time.monotonic() - start < limit_s:
        if not seconded and time.monotonic() - start > 0.2:
            for name in again:  # an impatient Ctrl-C / launch's SIGTERM while the node is closing
                if processes[name].poll() is None:
                    processes[name].send_signal(signal.SIGINT)
                    processes[name].send_signal(signal.SIGTERM)
            seconded = True
        for name, process in processes.items():
            if name not in exits and process.poll() is not None:
                exits[name] = (process.returncode, time.monotonic() - start)
        time.sleep(0.01)
    for name in processes:
        exits.setdefault(name, (None, time.monotonic() - start))
    return exits


def test_nodes_exit_promptly_after_sigint_under_load(tmp_path, rclpy_context):
    """env, actor and learner train over DDS; SIGINT to all three while both cores are busy: each
    exits with 0 within 5 s, and the learner writes its checkpoint first (a second SIGINT and a
    SIGTERM while it closes do not cut that short)."""
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.supervisor import start_node, stop_node, write_params_file
    overrides = ["env.action_dim=2", "algo.learning_starts=100", "run.total_env_steps=100000",
                 "run.progress_line=false", "learner.status_period_s=0.2",
                 # no periodic checkpoint: the one on disk afterwards is the one written at shutdown
                 "learner.checkpoint_every_updates=1000000", "learner.checkpoint_period_s=3600"]
    params = write_params_file(tmp_path / "params.yaml", str(CONFIG), overrides, tmp_path)
    nodes = {role: start_node(role, params, tmp_path / "logs", echo=False) for role in ("learner", "env", "actor")}
    probe = rclpy.create_node("shutdown_probe", context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(probe)
    status = []
    probe.create_subscription(msgs.LearnerStatus, topics.LEARNER_STATUS, status.append, qos.STATUS)
    load = []
    try:
        wait_for(lambda: executor.spin_once(timeout_sec=0.1) or (status and status[-1].learner_step >= 20),
                 90, "the learner to make 20 updates", poll_s=0)
        trained = status[-1].learner_step
        for name, node in nodes.items():
            assert node.popen.poll() is None, f"{name} died:\n" + "".join(node.lines[-30:])
        checkpoint = tmp_path / "checkpoints" / "latest.pt"
        assert not checkpoint.exists(), "no periodic checkpoint was expected before the SIGINT"
        load = busy_processes(os.cpu_count() or 2)
        time.sleep(0.5)  # let the load take the cores
        exits = interrupt_and_time({name: node.popen for name, node in nodes.items()}, EXIT_LIMIT_S + 10.0,
                                   again=("learner",))
    finally:
        for process in load:
            process.kill()
            process.wait()
        probe.destroy_node()
        for node in nodes.values():
            stop_node(node, timeout_s=30.0)
    logs = {name: "".join(node.lines[-30:]) for name, node in nodes.items()}
    print("exit code, seconds after SIGINT:", {name: (code, round(s, 2)) for name, (code, s) in exits.items()})
    for name, (code, seconds) in exits.items():
        assert code is not None, f"{name} still running {seconds:.1f} s after SIGINT:\n{logs[name]}"
        assert code == 0, f"{name} exited with {code}:\n{logs[name]}"
        assert seconds <= EXIT_LIMIT_S, f"{name} took {seconds:.1f} s to exit after SIGINT (limit {EXIT_LIMIT_S} s)"
    assert load_latest(tmp_path / "checkpoints")["counters"]["updates"] >= trained
    assert "learner stopped at" in logs["learner"]


PROBE_NODE = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from rclpy.node import Node
    from kuavo_rl.nodes.common import run_node

    mode, saved = sys.argv[1], Path(sys.argv[2])

    class ProbeNode(Node):
        def __init__(self):
            super().__init__("shutdown_probe_node")
            print("constructing", flush=True)
            if mode == "slow_start":
                time.sleep(60)  # e.g. importing a large policy library
            # a library's non-daemon thread that never ends: would block interpreter teardown
            threading.Thread(target=threading.Event().wait, name="library").start()
            self.timer = self.create_timer(0.05, self.spinning)

        def spinning(self):
            self.timer.cancel()
            print("running", flush=True)

        def close(self):
            print("closing", flush=True)
            time.sleep(1.0)  # the learner's last checkpoint; further signals arrive meanwhile
            saved.write_text("saved")
            print("closed", flush=True)

    raise SystemExit(run_node(ProbeNode))
""")


def start_probe(tmp_path, mode: str) -> subprocess.Popen:
    script = tmp_path / "probe_node.py"
    script.write_text(PROBE_NODE)
    return subprocess.Popen([sys.executable, "-u", str(script), mode, str(tmp_path / "saved")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for_line(process: subprocess.Popen, text: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"the probe node never printed {text!r}")


def finish(process: subprocess.Popen, timeout_s: float) -> tuple[int | None, str]:
    try:
        output, _ = process.communicate(timeout=timeout_s)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        return None, output


def test_repeated_signals_do_not_cut_close_short_and_stray_threads_do_not_block_exit(tmp_path, ros_domain):
    probe = start_probe(tmp_path, "run")
    wait_for_line(probe, "running")
    probe.send_signal(signal.SIGINT)
    wait_for_line(probe, "closing", timeout_s=5.0)
    probe.send_signal(signal.SIGINT)
    probe.send_signal(signal.SIGTERM)
    code, output = finish(probe, EXIT_LIMIT_S)
    assert code == 0, f"exit code {code} (None: still running after {EXIT_LIMIT_S} s):\n{output}"
    assert "closed" in output and (tmp_path / "saved").read_text() == "saved"


def test_sigint_while_the_node_is_still_starting_exits_promptly(tmp_path, ros_domain):
    probe = start_probe(tmp_path, "slow_start")
    wait_for_line(probe, "constructing")
    probe.send_signal(signal.SIGINT)
    code, output = finish(probe, EXIT_LIMIT_S)
    assert code == 0, f"exit code {code} (None: still running after {EXIT_LIMIT_S} s):\n{output}"
    assert "closing" not in output  # no node yet, nothing to close


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a job it starts in the background


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint_inherited_ignored", "sigterm"])
def test_kuavo_rl_train_stops_its_nodes_on_a_signal_and_leaves_none_behind(signum, tmp_path, ros_domain):
    """The supervisor's nodes run in their own sessions (out of reach of the terminal's Ctrl-C), so
    `kuavo-rl train` must stop them itself: on Ctrl-C even when started in the background (SIGINT
    inherited ignored), and on SIGTERM. It says so and exits 1; every node has closed (the learner
    wrote its checkpoint) and none is left running."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "kuavo_rl.cli", "train", "--config", str(CONFIG), "--run-dir", str(run_dir),
               "--set", "env.action_dim=2", "--set", "run.total_env_steps=100000", "--set", "run.progress_line=false"]
    train = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=ignore_sigint)
    try:
        for role, line in (("actor", "actor actor0"), ("learner", "kuavo_learner")):  # the learner starts last
            log = run_dir / "logs" / f"{role}.log"
            wait_for(lambda: log.exists() and line in log.read_text(), 120, f"the {role} to start")
        time.sleep(2.0)
        train.send_signal(signum)
        output, _ = train.communicate(timeout=60)
    finally:
        if train.poll() is None:
            train.kill()
    assert train.returncode == 1, output[-3000:]
    assert "interrupted before the actor finished" in output
    assert "learner stopped at" in (run_dir / "logs" / "learner.log").read_text()
    assert (run_dir / "checkpoints" / "latest.pt").exists()
    left = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.split()
    assert not left, f"nodes left running: {left}"
