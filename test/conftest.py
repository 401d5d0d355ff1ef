"""Shared test fixtures: every ROS test gets its own DDS domain so parallel or leftover
processes never cross-talk."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def ros_domain(monkeypatch) -> int:
    domain = random.randint(1, 200)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    return domain


@pytest.fixture
def rclpy_context(ros_domain):
    import rclpy
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    yield context
    context.try_shutdown()


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def default_config() -> str:
    return str(REPO / "config" / "toy_mse.yaml")
