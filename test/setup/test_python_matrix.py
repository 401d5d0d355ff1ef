"""The set-up from nothing, then messages and a short training across processes, on the other
Pythons robot PCs have: 3.10 (Ubuntu 22.04, Humble) and 3.12 (Ubuntu 24.04, Jazzy). The rest of the
suite runs on the Python of this checkout's own venv.

Each Python gets a copy of this checkout (the files git knows, edits included) and its own venv,
both set up at once from nothing: about 6 GB and 5 minutes each here, removed afterwards. A missing
interpreter skips its test, unless KUAVO_REQUIRE_PYTHON_MATRIX=1 (CI) makes that a failure.
"""
from __future__ import annotations

import glob
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers.pipeline import REPO

pytestmark = pytest.mark.slow  # minutes of pip and colcon

OTHER_PYTHONS = ("3.10", "3.12")
SETUP_TIMEOUT_S = 1500.0
# What a user's shell has before it sources anything of ours: the parent's venv, ROS paths and
# library paths must not leak into the copy's set-up (the wheels' loader trusts a guard variable).
KEPT_VARIABLES = ("HOME", "USER", "LOGNAME", "LANG", "TERM", "TMPDIR", "SHELL", "http_proxy", "https_proxy",
                  "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def find_python(version: str) -> str | None:
    """KUAVO_PYTHON_3_10 (etc.) when set, else pyenv's or the system's python3.X."""
    explicit = os.environ.get(f"KUAVO_PYTHON_{version.replace('.', '_')}")
    candidates = [explicit] if explicit else [
        *glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")),
        f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def copy_checkout(target: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def outside_environment(python: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in KEPT_VARIABLES or k.startswith(("PIP_", "LC_", "PYENV"))}
    env["PATH"] = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(REPO)))
    env.update(KUAVO_PYTHON=python, KUAVO_FORCE_WHEELS="1", ROS_DOMAIN_ID=str(random.randint(1, 200)))
    return env


@dataclass
class Checkout:
    root: Path
    env: dict[str, str]
    setup: subprocess.Popen
    setup_log: Path
    started: float
    ended: float | None = None

    def wait_for_setup(self, timeout_s: float) -> int:
        """The set-up's exit code; `ended` is when it ended, not when a test got round to asking."""
        self._watcher.join(timeout_s)
        assert self.ended is not None, f"the set-up did not end within {timeout_s} s"
        return self.setup.returncode

    def __post_init__(self):
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self):
        self.setup.wait()
        self.ended = time.monotonic()

    def run(self, *command: str, timeout_s: float) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.root / "kuavo"), *command], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory):
    """Every available Python's copy, all set up at once (pip downloads overlap)."""
    if not (REPO / ".git").exists():
        pytest.skip("the install matrix copies the checkout's files through git; this is not a git checkout")
    started: dict[str, Checkout | None] = {}
    for version in OTHER_PYTHONS:
        python = find_python(version)
        if python is None:
            started[version] = None
            continue
        root = tmp_path_factory.mktemp(f"python{version}") / "kuavo_rl"
        copy_checkout(root)
        env = outside_environment(python)
        setup_log = root.parent / "setup.log"
        with setup_log.open("w") as log:
            setup = subprocess.Popen([str(root / "kuavo"), "setup"], cwd=root, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # pip and colcon: one group
        started[version] = Checkout(root, env, setup, setup_log, time.monotonic())
    yield started
    for checkout in filter(None, started.values()):
        if checkout.setup.poll() is None:
            os.killpg(checkout.setup.pid, signal.SIGKILL)
            checkout.setup.wait()
        shutil.rmtree(checkout.root.parent, ignore_errors=True)  # the venv alone is about 6 GB


@pytest.mark.parametrize("version", OTHER_PYTHONS)
def test_set_up_from_nothing_then_dds_messages_and_a_short_training(version, checkouts, record_testsuite_property):
    checkout = checkouts[version]
    if checkout is None:
        missing = f"no Python {version} here (set KUAVO_PYTHON_{version.replace('.', '_')} to one)"
        if os.environ.get("KUAVO_REQUIRE_PYTHON_MATRIX") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    returncode = checkout.wait_for_setup(SETUP_TIMEOUT_S)
    setup_s = checkout.ended - checkout.started
    assert returncode == 0, checkout.setup_log.read_text()[-4000:]
    record_testsuite_property(f"python{version}_setup_from_nothing_s", round(setup_s))  # junit XML
    venv_version = subprocess.run([str(checkout.root / ".venv" / "bin" / "python"), "-c",
                                   "import sys; print('%d.%d' % sys.version_info[:2])"],
                                  capture_output=True, text=True, check=True).stdout.strip()
    assert venv_version == version
    # From here on as a user's next command: no KUAVO_PYTHON, the venv's own Python is kept (a
    # fallback to the default Python would rebuild the venv and fail the version check below).
    del checkout.env["KUAVO_PYTHON"]
    stamp = (checkout.root / ".venv" / "kuavo_pip_stamp").read_text()

    # Every message type between two processes, with the copy's own pytest and conftest.
    messages = checkout.run("test", "test/ros/test_msgs_dds.py", "-q", "-p", "no:cacheprovider",
                            f"--basetemp={checkout.root.parent / 'pytest'}", timeout_s=300)
    assert messages.returncode == 0, messages.stdout[-3000:] + messages.stderr[-2000:]
    assert " passed" in messages.stdout and "failed" not in messages.stdout

    # The main job's pipeline (env node, actor, learner over DDS), short.
    run_dir = checkout.root.parent / "run"
    training = checkout.run("train", "--run-dir", str(run_dir), "--quiet", "--timeout", "300",
                            "--set", "env.action_dim=2", "--set", "run.total_env_steps=600",
                            "--set", "algo.learning_starts=200", timeout_s=400)
    assert training.returncode == 0, training.stdout[-3000:] + training.stderr[-3000:]
    result = yaml.safe_load((run_dir / "result.yaml").read_text())
    assert result["mode"] == "pipeline" and result["env_steps"] == 600
    assert result["updates"] > 0
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (checkout.root / ".venv" / "kuavo_pip_stamp").read_text() == stamp
