"""The Fast DDS profile that scripts/env.sh puts in every node's environment (config/dds/): which file
each ROS distribution gets, that the wheels' Fast DDS loads it without an error, and that the Fast DDS 2
and 3 versions say the same. What it buys on a lossy link is measured in test/twohost and bench/."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "config" / "dds"
STARTS_A_PUBLISHER = ("import rclpy, std_msgs.msg as m; rclpy.init(); "
                      "rclpy.create_node('profile_check').create_publisher(m.String, 'profile_check', 10); print('up')")


def env_after_sourcing(**preset: str) -> dict[str, str]:
    """The environment a shell has after `source scripts/env.sh`, starting from `preset` on top of ours
    minus the profile variables (so what env.sh decides is what is seen)."""
    base = {k: v for k, v in os.environ.items() if not k.endswith("_DEFAULT_PROFILES_FILE")}
    shell = subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/env.sh" && env -0'], env={**base, **preset},
                           capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split("=", 1) for line in shell.stdout.split("\0") if "=" in line)


def fast_dds_stderr(env: dict[str, str]) -> str:
    node = subprocess.run([sys.executable, "-c", STARTS_A_PUBLISHER], env=env, capture_output=True, text=True,
                          timeout=60)
    assert node.stdout.strip() == "up", node.stderr
    return node.stderr


def heartbeat_period_s(path: Path, tag: str) -> float:
    element = next(e for e in ET.parse(path).getroot().iter() if e.tag.rsplit("}", 1)[-1] == tag)
    parts = {child.tag.rsplit("}", 1)[-1]: int(child.text) for child in element}
    return parts["sec"] + parts["nanosec"] / 1e9


def test_env_sh_points_fast_dds_3_at_the_profile_and_keeps_a_users_own():
    assert env_after_sourcing()["FASTDDS_DEFAULT_PROFILES_FILE"] == str(PROFILES / "fastdds.xml")
    own = "/etc/my_team/fastdds.xml"
    assert env_after_sourcing(FASTDDS_DEFAULT_PROFILES_FILE=own)["FASTDDS_DEFAULT_PROFILES_FILE"] == own


@pytest.mark.parametrize("distro, fast_dds_2_profile", [("humble", "fastrtps.xml"), ("jazzy", "fastrtps.xml"),
                                                       ("kilted", None), ("", None)])
def test_fast_dds_2_distributions_also_get_its_own_profile(distro, fast_dds_2_profile):
    """Humble and Jazzy ship Fast DDS 2, which reads only FASTRTPS_DEFAULT_PROFILES_FILE and other tag
    names; later distributions would warn that this variable is deprecated, so they do not get it."""
    env = env_after_sourcing(ROS_DISTRO=distro)
    expected = str(PROFILES / fast_dds_2_profile) if fast_dds_2_profile else None
    assert env.get("FASTRTPS_DEFAULT_PROFILES_FILE") == expected


def test_the_wheels_fast_dds_loads_the_profile_without_an_error(tmp_path):
    env = env_after_sourcing()
    assert "XMLPARSER" not in fast_dds_stderr(env)
    # The same check sees a profile Fast DDS refuses (here, Fast DDS 2's tag names), so it does read the file.
    assert "XMLPARSER" in fast_dds_stderr({**env, "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILES / "fastrtps.xml")})


def test_both_fast_dds_versions_get_the_same_fast_heartbeat():
    fast_dds_3 = heartbeat_period_s(PROFILES / "fastdds.xml", "heartbeat_period")
    fast_dds_2 = heartbeat_period_s(PROFILES / "fastrtps.xml", "heartbeatPeriod")
    assert fast_dds_3 == fast_dds_2 == 0.1
