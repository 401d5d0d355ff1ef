"""The training workstation's side of a two-machine run: the learner alone (robot.launch.py runs
the rest on the robot PC). Same experiment file, ROS_DOMAIN_ID and run key on both machines.

    ros2 launch kuavo_rl learner.launch.py env:=kuavo run_dir:=runs/box-lift \\
        set:="run.key_file=/etc/kuavo_rl/run.key"
"""
from kuavo_rl.launch_description import describe


def generate_launch_description():
    return describe("learner")
