"""The robot PC's side of a two-machine run: the env bridge (and, for env:=kuavo_sim, the simulated
Kuavo), the actor and optionally the VR teleop node. The learner runs on the training workstation
(learner.launch.py) on the same ROS_DOMAIN_ID, with ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET on both
machines and a copy of this run's key (set:="run.key_file=/path/run.key").

    ros2 launch kuavo_rl robot.launch.py env:=kuavo vr:=true run_dir:=runs/box-lift \\
        set:="run.key_file=/etc/kuavo_rl/run.key"
"""
from kuavo_rl.launch_description import describe


def generate_launch_description():
    return describe("robot")
