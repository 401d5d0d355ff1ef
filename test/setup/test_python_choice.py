"""Which Python the set-up takes, and its refusals, checked before it touches the venv."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers.pipeline import REPO


def fake_python(folder: Path, version: str) -> Path:
    """Answers the set-up's version question only: the refusal must come before any other use."""
    path = folder / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def set_up_with(python: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUAVO_PYTHON": python}
    return subprocess.run([str(REPO / "scripts" / "setup.sh")], env=env, capture_output=True, text=True, timeout=60)


def read_lock(path: Path) -> dict[str, str]:
    return dict(line.split("==") for line in path.read_text().split())


def test_every_lock_pins_the_same_core_packages():
    locks = sorted((REPO / "requirements").glob("python-3.*.txt"))
    assert [lock.name for lock in locks] == ["python-3.10.txt", "python-3.11.txt", "python-3.12.txt"]
    reference = read_lock(REPO / "requirements" / "python-3.11.txt")
    for lock in locks:
        pins = read_lock(lock)
        for core in ("torch", "torchvision", "stable_baselines3", "gymnasium", "pyopenxr", "numpy", "PyYAML"):
            assert pins[core] == reference[core], (lock.name, core)


def test_an_unsupported_python_is_refused_with_the_supported_list(tmp_path):
    completed = set_up_with(str(fake_python(tmp_path, "3.9")))
    assert completed.returncode == 1
    assert "Python 3.9" in completed.stderr and "is not supported" in completed.stderr
    assert "3.10 3.11 3.12" in completed.stderr
    assert "creating the venv" not in completed.stderr


def test_a_python_that_does_not_exist_is_named(tmp_path):
    completed = set_up_with(str(tmp_path / "python3.10"))
    assert completed.returncode == 1
    assert f"KUAVO_PYTHON={tmp_path / 'python3.10'} is not an interpreter" in completed.stderr


def test_a_program_that_is_not_python_is_named(tmp_path):
    completed = set_up_with("/bin/false")
    assert completed.returncode == 1
    assert "/bin/false does not run as a Python interpreter" in completed.stderr
