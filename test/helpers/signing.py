"""Sign test messages as a process of the run under test (the nodes refuse unsigned ones)."""
from pathlib import Path

from kuavo_rl.auth import Signer, key_path, load_or_create_key


def run_signer(run_dir: str | Path, role: str = "test") -> Signer:
    """A signer holding the run key of `run_dir` (created here if no node has created it yet)."""
    return Signer(load_or_create_key(key_path(run_dir)), role)
