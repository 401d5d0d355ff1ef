import glob
import os

from setuptools import find_packages, setup

PACKAGE = "kuavo_rl"
HERE = os.path.dirname(os.path.abspath(__file__))
# launch/ and config/ live at the workspace root and are installed into
# share/kuavo_rl so that `ros2 launch kuavo_rl train.launch.py` finds them.
ROOT = os.path.relpath(os.path.join(HERE, "..", ".."), HERE)


def root_files(pattern):
    return sorted(glob.glob(os.path.join(ROOT, pattern)))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", root_files("launch/*.py")),
        ("share/" + PACKAGE + "/config", root_files("config/*.yaml")),
        ("share/" + PACKAGE + "/config/sweeps", root_files("config/sweeps/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="kuavo_rl developers",
    maintainer_email="kuavo-rl@example.com",
    description="Human-in-the-loop RL for the Leju Kuavo humanoid",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "env_node = kuavo_rl.nodes.env_node:main",
            "actor_node = kuavo_rl.nodes.actor_node:main",
            "learner_node = kuavo_rl.nodes.learner_node:main",
            "kuavo_sim_node = kuavo_rl.nodes.kuavo_sim_node:main",
            "kuavo-rl = kuavo_rl.cli:main",
        ],
    },
)
