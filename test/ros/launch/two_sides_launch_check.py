"""launch_testing test of the two-machine launch files on one host: learner.launch.py (the
workstation) and robot.launch.py (the robot PC: the simulated Kuavo, the Kuavo bridge, the actor)
train a short box-lift run together with one run directory (one run key) and exit cleanly.
Run by test/ros/test_train_launch.py through launch_testing's own runner."""
import os
import unittest
from pathlib import Path

import launch_testing
import launch_testing.actions
import launch_testing.asserts
import pytest
from launch.launch_description_sources import PythonLaunchDescriptionSource

import launch

LAUNCH_DIR = Path(__file__).resolve().parents[3] / "launch"
RUN_DIR = Path(os.environ.get("KUAVO_LAUNCH_TEST_RUN_DIR", "/tmp/kuavo_two_sides_launch_test"))
SHORT_RUN = ("run.total_env_steps=200 algo.learning_starts=100 algo.grad_clip_norm=0 algo.hidden_dims=[64,64] env.episode_steps=50 "
             "actor.eval_every_episodes=0 actor.final_eval_episodes=1")


def side(name: str):
    return launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_DIR / f"{name}.launch.py")),
        launch_arguments={"env": "kuavo_sim", "set": SHORT_RUN, "run_dir": str(RUN_DIR), "algo": "sb3_sac"}.items())


@pytest.mark.launch_test
def generate_test_description():
    return launch.LaunchDescription([side("learner"), side("robot"), launch_testing.actions.ReadyToTest()])


class TestTrainingRuns(unittest.TestCase):
    def test_the_simulated_kuavo_is_driven_and_the_actor_finishes(self, proc_output):
        proc_output.assertWaitFor("simulated Kuavo (lockstep)", timeout=120, stream="stderr")
        proc_output.assertWaitFor("backend sb3_sac", timeout=120, stream="stderr")
        proc_output.assertWaitFor("finished: ", timeout=600, stream="stderr")


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_every_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_learner_wrote_a_checkpoint(self):
        self.assertTrue((RUN_DIR / "checkpoints" / "latest.pt").exists())
