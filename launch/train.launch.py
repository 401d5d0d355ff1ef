"""Train through the pipeline on one machine: env node, actor and learner (and optionally the VR
teleop node; for env:=kuavo_sim also the simulated Kuavo).

    ros2 launch kuavo_rl train.launch.py                          # toy task, 14-dim, MSE, lerobot SAC
    ros2 launch kuavo_rl train.launch.py algo:=sb3_sac set:="run.total_env_steps=3000 env.action_dim=6"
    ros2 launch kuavo_rl train.launch.py env:=kuavo_sim           # the simulated Kuavo's box lift
    ros2 launch kuavo_rl train.launch.py env:=pick_lift vr:=true  # grasp-and-lift sim, Quest takeovers

Two machines: robot.launch.py on the robot PC, learner.launch.py on the workstation. Without
`ros2 launch` (PyPI-wheel installs): `kuavo-rl train` runs the same nodes with the same parameters
(both follow kuavo_rl.launch_plan). The launch ends when the actor has finished its env steps and
final evaluation.
"""
from kuavo_rl.launch_description import describe


def generate_launch_description():
    return describe("all")
