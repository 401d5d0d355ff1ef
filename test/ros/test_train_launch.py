"""Runs the launch_testing tests of the launch files (test/ros/launch/*_check.py) with
launch_testing's own runner, so it works whatever pytest version the venv has. Skipped, not
failed, where launch_testing / launch_ros are absent (the PyPI-wheel ROS 2 install has neither)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("launch_testing")
pytest.importorskip("launch_ros")

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

CHECKS = Path(__file__).parent / "launch"


@pytest.mark.parametrize("check", ["train_launch_check.py", "two_sides_launch_check.py"])
def test_launch_files_run_a_short_training(tmp_path, ros_domain, check):
    env = {**os.environ, "KUAVO_LAUNCH_TEST_RUN_DIR": str(tmp_path / "run")}
    completed = subprocess.run([sys.executable, "-m", "launch_testing.launch_test", str(CHECKS / check)], env=env,
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
