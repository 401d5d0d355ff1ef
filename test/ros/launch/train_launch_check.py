"""launch_testing test of launch/train.launch.py: the three nodes start, train a short run and
exit cleanly. Run by test/test_train_launch.py through launch_testing's own runner
(`python -m launch_testing.launch_test test/launch/train_launch_check.py`)."""
import os
import unittest
from pathlib import Path

import launch_testing
import launch_testing.actions
import launch_testing.asserts
import pytest
from launch.launch_description_sources import PythonLaunchDescriptionSource

import launch

LAUNCH_FILE = Path(__file__).resolve().parents[3] / "launch" / "train.launch.py"
RUN_DIR = Path(os.environ.get("KUAVO_LAUNCH_TEST_RUN_DIR", "/tmp/kuavo_launch_test"))
SHORT_RUN = ("env.action_dim=2 run.total_env_steps=600 algo.learning_starts=200 actor.eval_every_episodes=2 "
             "actor.final_eval_episodes=1")


@pytest.mark.launch_test
def generate_test_description():
    train = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"set": SHORT_RUN, "run_dir": str(RUN_DIR), "algo": "sb3_sac"}.items())
    return launch.LaunchDescription([train, launch_testing.actions.ReadyToTest()])


class TestTrainingRuns(unittest.TestCase):
    def test_learner_starts_and_actor_finishes(self, proc_output):
        proc_output.assertWaitFor("backend sb3_sac", timeout=120, stream="stderr")
        proc_output.assertWaitFor("finished: ", timeout=600, stream="stderr")


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_every_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_learner_wrote_a_checkpoint(self):
        self.assertTrue((RUN_DIR / "checkpoints" / "latest.pt").exists())
