"""ros1_bridge mapping rules: every ROS 2 port of a Leju message or service is paired with Leju's
ROS 1 name (their names start lower-case; ROS 2 requires a capital)."""
from __future__ import annotations

from pathlib import Path

import yaml

from helpers.msg_fixtures import KUAVO_MESSAGES

RULES = Path(__file__).resolve().parents[2] / "src" / "kuavo_msgs" / "mapping_rules.yaml"
PORTED_SERVICES = ("ChangeArmCtrlMode",)


def _ros1_name(ros2_name: str) -> str:
    return ros2_name[0].lower() + ros2_name[1:]


def test_every_ported_message_and_service_has_a_rule():
    rules = yaml.safe_load(RULES.read_text())
    messages = {r["ros2_message_name"]: r["ros1_message_name"] for r in rules if "ros2_message_name" in r}
    services = {r["ros2_service_name"]: r["ros1_service_name"] for r in rules if "ros2_service_name" in r}
    assert {name: messages.get(name) for name in KUAVO_MESSAGES} == {n: _ros1_name(n) for n in KUAVO_MESSAGES}
    assert {name: services.get(name) for name in PORTED_SERVICES} == {n: _ros1_name(n) for n in PORTED_SERVICES}
    assert all(r["ros1_package_name"] == r["ros2_package_name"] == "kuavo_msgs" for r in rules)
