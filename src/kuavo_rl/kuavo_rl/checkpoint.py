"""Atomic, safe-to-load checkpoints.

Atomic: write a temporary file `.latest.pt.tmp-<pid>`, fsync, then rename over latest.pt, so that a kill
at any moment leaves either the old or the new checkpoint, never a torn one. A kill mid-write leaves the
temporary file behind: `remove_stale_temporaries` deletes those of processes that are gone (the learner
calls it at start-up; `save_checkpoint` calls it too).

Safe to load: the file is read with `torch.load(weights_only=True)`, which unpickles only tensors and
plain containers and never runs code from the file, so whoever can write the run directory can't run
code in the learner. numpy arrays and numpy scalars (the replay buffers) aren't plain containers: they
are saved as tagged records `{"__kuavo_ndarray__": <uint8 tensor of the raw bytes>, "dtype": <.npy
descr>, "shape": [...], "scalar": bool}` and turned back into arrays of the same dtype, shape and
bytes on load. The state is wrapped as `{"kuavo_checkpoint": FORMAT, "state": ...}`, so a file that
loads but isn't one of ours is refused too. A file that is truncated, corrupt, or holds other objects
raises `CheckpointError` naming the path.
"""
from __future__ import annotations

import math
import os
import re
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import descr_to_dtype, dtype_to_descr

__all__ = ["LATEST", "CheckpointError", "load_latest", "remove_stale_temporaries", "save_checkpoint"]

LATEST = "latest.pt"
FORMAT = 1  # version of the envelope and of the numpy record layout
_HEADER = "kuavo_checkpoint"
_ARRAY = "__kuavo_ndarray__"
_ARRAY_KEYS = frozenset((_ARRAY, "dtype", "shape", "scalar"))
_TMP_PREFIX = f".{LATEST}.tmp-"
_TMP_NAME = re.compile(rf"^{re.escape(_TMP_PREFIX)}(\d+)$")
# Leaves torch's weights-only unpickler rebuilds (exact types: subclasses such as IntEnum would pickle
# a reference to their class, which the loader refuses).
_ATOMS = (type(None), bool, int, float, complex, str, bytes, torch.Size, torch.dtype, torch.device)
_TENSORS = (torch.Tensor, torch.nn.Parameter)


class CheckpointError(RuntimeError):
    """A checkpoint that can't be loaded: truncated, corrupt, not a kuavo_rl checkpoint, or holding
    objects that could run code when unpickled."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


# ---- save ---------------------------------------------------------------------------------------
def save_checkpoint(state: dict, directory: str | Path) -> Path:
    """Write `state` atomically to <directory>/latest.pt and return that path. Raises TypeError
    (before touching the directory's checkpoint) when the state holds an object that can't be
    loaded back safely."""
    directory = Path(directory)
    payload = {_HEADER: FORMAT, "state": _encode(state, ())}
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory)
    final = directory / LATEST
    tmp = directory / f"{_TMP_PREFIX}{os.getpid()}"
    try:
        with tmp.open("wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def _encode(obj, where: tuple):
    """`obj` with numpy arrays and scalars replaced by tagged records. Containers are rebuilt only
    when something inside them changed (so module state dicts keep their OrderedDict `_metadata`)."""
    kind = type(obj)
    if kind in _ATOMS or kind in _TENSORS:
        return obj
    if isinstance(obj, np.ndarray):
        return _array_record(obj, False, where)
    if isinstance(obj, np.generic):  # before the atoms' subclasses: np.float64 is a float
        return _array_record(np.asarray(obj), True, where)
    if kind is dict or kind is OrderedDict:
        if _ARRAY in obj:
            raise ValueError(f"checkpoint state at {_where(where)}: the key {_ARRAY!r} is reserved")
        items = []
        for key, value in obj.items():
            _check_key(key, where)
            items.append((key, _encode(value, (*where, key))))
        if all(new is obj[key] for key, new in items):
            return obj
        return _rebuilt(obj, items)
    if kind is list or kind is tuple:
        values = [_encode(v, (*where, i)) for i, v in enumerate(obj)]
        if all(new is old for new, old in zip(values, obj)):
            return obj
        return kind(values)
    if kind is set:
        for value in obj:
            _check_key(value, where)
        return obj
    raise TypeError(f"checkpoint state at {_where(where)}: a {kind.__module__}.{kind.__qualname__} can't be saved "
                    "(only tensors, numpy arrays/scalars, str/int/float/bool/None and dict/list/tuple/set of them)")


def _array_record(array: np.ndarray, scalar: bool, where: tuple) -> dict:
    if array.dtype.hasobject:
        raise TypeError(f"checkpoint state at {_where(where)}: numpy arrays of Python objects can't be saved")
    flat = np.ascontiguousarray(array).reshape(-1)
    if not flat.flags.writeable:  # torch.from_numpy warns on read-only memory
        flat = flat.copy()
    raw = torch.from_numpy(flat.view(np.uint8)) if flat.dtype.itemsize else torch.zeros(0, dtype=torch.uint8)
    return {_ARRAY: raw, "dtype": dtype_to_descr(array.dtype), "shape": list(array.shape), "scalar": scalar}


def _check_key(key, where: tuple) -> None:
    if type(key) is tuple:
        for part in key:
            _check_key(part, where)
    elif type(key) not in _ATOMS:
        raise TypeError(f"checkpoint state at {_where(where)}: a key of type {type(key).__qualname__} can't be saved")


def _where(where: tuple) -> str:
    return "state" + "".join(f"[{part!r}]" for part in where)


def _rebuilt(original: dict, items: list) -> dict:
    new = type(original)(items)
    metadata = getattr(original, "_metadata", None)
    if metadata is not None:
        new._metadata = metadata
    return new


# ---- load ---------------------------------------------------------------------------------------
def load_latest(directory: str | Path) -> dict | None:
    """The state saved last in `directory`, or None when there is no checkpoint. Raises
    CheckpointError when the checkpoint is truncated, corrupt, or holds anything but tensors and
    plain containers (it is then never unpickled beyond the refused object, so no code runs)."""
    path = Path(directory) / LATEST
    if not path.exists():
        return None
    with path.open("rb") as handle:  # an OSError (permissions, ...) is not corruption: raise it as is
        if not zipfile.is_zipfile(handle):
            raise _unreadable(path, "not a complete zip archive (empty, truncated, or not written by save_checkpoint)")
        handle.seek(0)
        try:
            payload = torch.load(handle, weights_only=True, map_location="cpu")  # saved on any device
        except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, KeyError, ...
            reason = _loader_reason(exc)
            if "GLOBAL" in reason or "Unsupported class" in reason:
                hint = (" (it looks written by an older kuavo_rl that pickled numpy arrays directly)"
                        if "numpy" in reason else "")
                raise CheckpointError(
                    f"checkpoint {path} is refused: it holds pickled objects other than tensors and plain containers, "
                    f"which could run code when loaded ({reason}){hint}; move it away to start fresh, "
                    "or restore a backup", path) from exc
            raise _unreadable(path, reason) from exc
    if not isinstance(payload, dict) or set(payload) != {_HEADER, "state"}:
        what = f"a dict with keys {sorted(map(str, payload))}" if isinstance(payload, dict) else type(payload).__name__
        raise _unreadable(path, f"it holds {what}, not a kuavo_rl checkpoint ({{{_HEADER!r}, 'state'}})")
    if payload[_HEADER] != FORMAT:
        raise _unreadable(path, f"checkpoint format {payload[_HEADER]!r}, this kuavo_rl reads format {FORMAT}")
    if not isinstance(payload["state"], dict):
        raise _unreadable(path, f"its state is a {type(payload['state']).__name__}, not a dict")
    try:
        return _decode(payload["state"])
    except (ValueError, TypeError) as exc:
        raise _unreadable(path, f"bad numpy record: {exc}") from exc


def _unreadable(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupt): {reason}; "
                           "move it away to start fresh, or restore a backup", path)


def _loader_reason(exc: Exception) -> str:
    """torch's message without its boilerplate (which suggests weights_only=False: not for us)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("Weights only load failed", "Check the documentation"))]
    kept = [line.split("WeightsUnpickler error:", 1)[-1].strip() if "WeightsUnpickler error:" in line else line
            for line in kept]
    text = " ".join(line for line in kept if line)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _decode(obj):
    kind = type(obj)
    if kind is dict or kind is OrderedDict:
        if _ARRAY in obj:
            return _array_from_record(obj)
        items = [(key, _decode(value)) for key, value in obj.items()]
        if all(new is obj[key] for key, new in items):
            return obj
        return _rebuilt(obj, items)
    if kind is list or kind is tuple:
        values = [_decode(v) for v in obj]
        if all(new is old for new, old in zip(values, obj)):
            return obj
        return kind(values)
    return obj


def _array_from_record(record: dict):
    if set(record) != _ARRAY_KEYS:
        raise ValueError(f"keys {sorted(record)} != {sorted(_ARRAY_KEYS)}")
    raw, shape = record[_ARRAY], record["shape"]
    if not (isinstance(raw, torch.Tensor) and raw.dtype == torch.uint8 and raw.dim() == 1):
        raise ValueError("the data is not a 1-D uint8 tensor")
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError(f"bad shape {shape!r}")
    dtype = descr_to_dtype(record["dtype"])
    if dtype.hasobject:  # bytes reinterpreted as object pointers would crash (or worse)
        raise ValueError(f"object dtype {dtype}")
    if type(record["scalar"]) is not bool or (record["scalar"] and shape):
        raise ValueError(f"bad scalar flag {record['scalar']!r} for shape {shape}")
    if raw.numel() != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{raw.numel()} bytes for shape {shape} of {dtype}")
    data = raw.detach().cpu().numpy()
    array = data.view(dtype).reshape(shape) if dtype.itemsize else np.zeros(shape, dtype)
    return array[()] if record["scalar"] else array


# ---- temporaries --------------------------------------------------------------------------------
def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete `.latest.pt.tmp-<pid>` files whose writer is gone (a kill mid-save leaves them) and
    return them. A temporary of another live process is kept: it may be writing right now. One
    named with this process's pid is a leftover of an earlier process that had the same pid (so it
    must not be called while this process saves from another thread)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        match = _TMP_NAME.match(path.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            path.unlink()
        except FileNotFoundError:  # another process cleaned it first
            continue
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return True  # unsure: keep the file
    return True
