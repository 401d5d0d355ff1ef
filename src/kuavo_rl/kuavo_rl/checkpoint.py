"""Atomic checkpoints: write a temporary file, fsync, then rename over latest.pt, so that a kill
at any moment leaves either the old or the new checkpoint, never a torn one."""
from __future__ import annotations

import os
from pathlib import Path

import torch

LATEST = "latest.pt"


def save_checkpoint(state: dict, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / LATEST
    tmp = directory / f".{LATEST}.tmp-{os.getpid()}"
    with tmp.open("wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def load_latest(directory: str | Path) -> dict | None:
    path = Path(directory) / LATEST
    if not path.exists():
        return None
    return torch.load(path, weights_only=False)
