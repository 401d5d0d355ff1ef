"""Checkpoints: exact round-trip of the learner's state through weights-only loading, refusal of
pickled code and of truncated/corrupt files (naming the path), and cleanup of the temporaries that a
kill mid-save leaves behind."""
import math
import os
import subprocess
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from helpers.cores import TERMS, make_actor, run_episode, small_cfg
from kuavo_rl.checkpoint import LATEST, CheckpointError, load_latest, remove_stale_temporaries, save_checkpoint
from kuavo_rl.learner_core import LearnerCore


def assert_same(a, b, where="state"):
    """Same types, keys (in order), dtypes, shapes and bits, all the way down."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{where}: values differ"
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert torch.equal(a, b), f"{where}: values differ"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def trained_learner(backend: str) -> tuple:
    cfg = small_cfg(backend=backend)
    actor, learner = make_actor(cfg), LearnerCore(cfg, 3, 2, TERMS)
    for episode in range(3):
        run_episode(actor, episode)
    run_episode(actor, 3, length=3, truncate=False)  # left open: the episode tracker has state too
    for batch in actor.batches_to_send(0.0):
        learner.ingest(batch)
    for _ in range(learner.updates_due()):
        learner.train_step()
    assert learner.updates > 0 and len(learner.buffers.online) > 0
    return cfg, learner


def test_learner_state_round_trips_exactly_through_weights_only_loading(tmp_path):
    cfg, learner = trained_learner("sb3_sac")  # lerobot_sac's state has the same kinds of leaves; its import is slow
    state = learner.state_dict()
    dtypes = {v.dtype for v in state["buffers"]["online"].values() if isinstance(v, np.ndarray)}
    assert dtypes == {np.dtype(np.float32), np.dtype(bool), np.dtype(np.uint64)}
    assert state["rng"]["state"]["state"] >= 2**64  # a 128-bit int (PCG64)

    path = save_checkpoint(state, tmp_path)
    assert path == tmp_path / LATEST
    torch.load(path, weights_only=True)  # nothing in the file needs the unsafe unpickler
    loaded = load_latest(tmp_path)
    assert_same(state, loaded)
    assert loaded["backend"] is not state["backend"]

    resumed = LearnerCore(cfg, 3, 2, TERMS, seed=999)
    resumed.load_state_dict(loaded)
    for name in ("online", "offline"):
        mine, theirs = getattr(learner.buffers, name), getattr(resumed.buffers, name)
        assert (mine.size, mine.cursor) == (theirs.size, theirs.cursor)
        assert_same(vars(mine.contents()), vars(theirs.contents()), name)
    assert_same(learner.ledger.state_dict(), resumed.ledger.state_dict())
    assert_same(learner.episodes.state_dict(), resumed.episodes.state_dict())
    assert resumed.rng.bit_generator.state == learner.rng.bit_generator.state
    assert np.array_equal(resumed.rng.integers(0, 2**63, 8), learner.rng.integers(0, 2**63, 8))


def test_numpy_arrays_and_scalars_keep_dtype_shape_and_bits(tmp_path):
    metadata = OrderedDict({"": {"version": 1}})
    module_state = OrderedDict(weight=torch.arange(6.0).reshape(2, 3), steps=torch.tensor(7, dtype=torch.uint64))
    module_state._metadata = metadata
    state = {
        "uint64": np.array([0, 1, 2**63, 2**64 - 1], np.uint64),
        "bool": np.array([[True, False], [False, True]]),
        "float32_bits": np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, 3.4028235e38], np.float32),
        "big_endian": np.arange(5, dtype=">i8"),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        "transposed_view": np.arange(12, dtype=np.int16).reshape(3, 4).T,
        "zero_d": np.array(3.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "structured": np.array([(1, 2.5), (-3, 4.0)], dtype=[("a", "<i4"), ("b", ">f8")]),
        "strings": np.array(["ab", "xyz"]),
        "datetimes": np.array(["2024-01-02T03:04:05"], "datetime64[us]"),
        "read_only": np.frombuffer(b"\x01\x02\x03\x04", np.uint8),
        "scalars": [np.float32(1.25), np.float64(-2.5), np.uint64(2**64 - 1), np.int8(-7), np.bool_(True),
                    np.str_("hi")],
        "python": {"big": 2**127 + 5, "negative_big": -(2**100), "float": float("nan"), "none": None,
                   "flag": False, "text": "t", 3: (1, 2.0, "x"), (0, "k"): [None]},
        "tuple_of_arrays": (np.ones(2, np.float32), np.zeros(1, bool)),
        "module": module_state,
    }
    save_checkpoint(state, tmp_path)
    loaded = load_latest(tmp_path)
    assert_same(state, loaded)
    assert loaded["module"] is not state["module"] and loaded["module"]._metadata == metadata
    assert loaded["fortran"].tolist() == state["fortran"].tolist()
    assert loaded["uint64"].flags.writeable  # a buffer restored from it can be written into


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["top_level", "inside_a_valid_checkpoint", "legacy_format"])
def test_pickled_code_is_refused_and_never_runs(where, tmp_path):
    marker = tmp_path / "code_ran"
    evil = RunsCode(marker)
    path = tmp_path / LATEST
    if where == "top_level":
        torch.save({"counters": evil}, path)
    elif where == "inside_a_valid_checkpoint":
        save_checkpoint({"counters": {"updates": 1}}, tmp_path)
        with zipfile.ZipFile(path) as archive:
            assert any(name.endswith("data.pkl") for name in archive.namelist())
        torch.save({"kuavo_checkpoint": 1, "state": {"counters": {"updates": evil}}}, path)
    else:
        torch.save({"counters": evil}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError) as error:
        load_latest(tmp_path)
    assert str(path) in str(error.value) and error.value.path == path
    assert "weights_only` set to `False`" not in str(error.value)  # never advise the unsafe load
    assert not marker.exists()


def _garbage(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _bad_record(path):
    record = {"__kuavo_ndarray__": torch.zeros(7, dtype=torch.uint8), "dtype": "<f4", "shape": [2], "scalar": False}
    torch.save({"kuavo_checkpoint": 1, "state": {"buffer": record}}, path)


CORRUPTIONS = {
    "truncated_to_half": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "last_byte_missing": lambda path: path.write_bytes(path.read_bytes()[:-1]),
    "empty": lambda path: path.write_bytes(b""),
    "random_bytes": _garbage,
    "not_a_dict": lambda path: torch.save([1, 2, 3], path),
    "dict_without_header": lambda path: torch.save({"counters": {"updates": 3}}, path),
    "unknown_format": lambda path: torch.save({"kuavo_checkpoint": 99, "state": {}}, path),
    "numpy_record_of_wrong_size": _bad_record,
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_corrupt_checkpoint_is_refused_naming_the_path(corruption, tmp_path):
    path = save_checkpoint({"buffer": np.arange(1000, dtype=np.float32), "weights": torch.ones(1000)}, tmp_path)
    CORRUPTIONS[corruption](path)
    with pytest.raises(CheckpointError, match="unreadable") as error:
        load_latest(tmp_path)
    message = str(error.value)
    assert str(path) in message and "move it away" in message and error.value.path == path


def test_load_latest_without_checkpoint_returns_none(tmp_path):
    assert load_latest(tmp_path) is None
    assert load_latest(tmp_path / "missing") is None


def test_unsaveable_state_is_refused_before_touching_the_checkpoint(tmp_path):
    save_checkpoint({"updates": 1}, tmp_path)
    for bad, error in [({"updates": 2, "obj": RunsCode(tmp_path / "x")}, TypeError),
                       ({"updates": 2, "objects": np.array([{}], dtype=object)}, TypeError),
                       ({"updates": 2, "keys": {np.int64(1): 0}}, TypeError),
                       ({"updates": 2, "__kuavo_ndarray__": 0}, ValueError)]:
        with pytest.raises(error, match=r"state"):
            save_checkpoint(bad, tmp_path)
    assert load_latest(tmp_path) == {"updates": 1}
    assert [p.name for p in tmp_path.iterdir()] == [LATEST]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()  # exited and reaped: its pid names no process (until reused, which takes a while)
    return child.pid


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    def temporary(pid):
        path = tmp_path / f".{LATEST}.tmp-{pid}"
        path.write_bytes(b"half a checkpoint")
        return path

    dead, live, own = temporary(dead_pid()), temporary(os.getppid()), temporary(os.getpid())
    others = [tmp_path / LATEST, tmp_path / f".{LATEST}.tmp-abc", tmp_path / f".{LATEST}.tmp-1.bak", tmp_path / "x.pt"]
    for path in others:
        path.write_bytes(b"")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([dead, own])  # own pid: a leftover of an earlier process with our pid
    assert not dead.exists() and not own.exists()
    assert live.exists() and all(path.exists() for path in others)
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path / "missing") == []

    others[0].unlink()
    dead = temporary(dead_pid())
    save_checkpoint({"updates": 1}, tmp_path)
    assert not dead.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".{LATEST}.tmp-")) == \
        sorted([live.name, f".{LATEST}.tmp-abc", f".{LATEST}.tmp-1.bak"])
