"""Learning through the Kuavo bridge and the simulated Kuavo (in-process: the same bridge, simulator,
actor and learner code as the pipeline): on the reach sub-task, SAC's deterministic evaluation
return improves from a random policy's (about -180) past a fixed threshold in 3000 env steps."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from helpers.pipeline import REPO

pytestmark = pytest.mark.slow  # about 40 s of training

THRESHOLD = -80.0  # final evaluation return; a random policy scores about -180, the first evaluation about -130


def test_reach_subtask_learns_past_the_threshold(tmp_path):
    command = [sys.executable, "-m", "kuavo_rl.cli", "train", "--inprocess", "--quiet",
               "--config", str(REPO / "config" / "kuavo_sim_reach.yaml"), "--run-dir", str(tmp_path),
               "--set", "env.kuavo.link=inprocess"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = yaml.safe_load((tmp_path / "result.yaml").read_text())
    print(result)
    assert result["final_eval_return"] > THRESHOLD, result
    assert result["final_eval_return"] > result["random_policy_return"] + 80, result
    spaces = yaml.safe_load((tmp_path / "spaces.yaml").read_text())  # what each observation index is
    assert len(spaces["observation"]) == 32 and spaces["observation"][:2] == ["hand_left_world.x", "hand_left_world.y"]
    assert spaces["observation"][6] == "arm_joints.zarm_l1_joint" and spaces["observation"][-1] == "box_position.z"
    assert spaces["reward_terms"] == ["hand_left_sq", "hand_right_sq", "box_sq", "success", "failure"]
