"""Only the processes of this run steer the robot: every message between the nodes is signed with
the run key (HMAC-SHA256, standard library) and checked on arrival.

- The run key is 32 random bytes in a file only its owner can read (`<run_dir>/run.key` unless
  `run.key_file` says otherwise). The launch (or `kuavo-rl train`) creates it; a node started by
  hand creates it if it is missing. A second machine of the same run gets a copy of the file.
- The run token, sha256(key)[:16], names the run in every message: a message of another run is
  refused by its token, a forged or altered one by its MAC, a recorded one replayed later by its
  counter (each sending process counts up from 1; a receiver keeps the last count per sender).

The MAC covers every field of the message (in declaration order, each value encoded with its
declared width) except the MAC itself, and the message type, so a signed message cannot be
reused as another type. This module imports no ROS: it works on any rosidl message object.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
import uuid
from pathlib import Path

import numpy as np

KEY_BYTES = 32
TOKEN_HEX = 16

_NUMPY_TYPES = {"boolean": "?", "float": "<f4", "double": "<f8", "octet": "u1", "char": "u1", "uint8": "u1",
                "int8": "i1", "uint16": "<u2", "int16": "<i2", "uint32": "<u4", "int32": "<i4", "uint64": "<u8",
                "int64": "<i8"}


class AuthError(ValueError):
    """A message that does not come from this run (wrong token, bad MAC, replayed)."""


def key_path(run_dir: str | Path, key_file: str = "") -> Path:
    return Path(key_file) if key_file else Path(run_dir) / "run.key"


def load_or_create_key(path: str | Path) -> bytes:
    """Read the run key, creating it (owner-only) if no process of the run has yet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(os.urandom(KEY_BYTES).hex().encode())
        handle.flush()
        os.fsync(handle.fileno())
    return _read_key(path)


def _read_key(path: Path, attempts: int = 50) -> bytes:
    for _ in range(attempts):  # another process of the run may be writing it this very moment
        text = path.read_text().strip()
        if text:
            break
        os.sched_yield()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise AuthError(f"run key {path} is not hex") from None
    if len(key) < 16:
        raise AuthError(f"run key {path} is too short ({len(key)} bytes; 32 expected)")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError(f"run key {path} is readable by other users: chmod 600 {path}")
    return key


def run_token(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:TOKEN_HEX]


# ---- canonical encoding ------------------------------------------------------------------------
def _fields(msg) -> dict[str, str]:
    return msg.get_fields_and_field_types()


def _encode(value, type_name: str, out: list[bytes]) -> None:
    base = type_name.split("<", 1)[1].rsplit(">", 1)[0].split(",")[0] if type_name.startswith("sequence<") else None
    if base is None and type_name.endswith("]"):
        base = type_name.split("[", 1)[0]
    if base is not None:  # a sequence or fixed array
        if base in _NUMPY_TYPES:
            data = np.asarray(value, dtype=_NUMPY_TYPES[base]).tobytes()
            out += [len(data).to_bytes(8, "little"), data]
            return
        out.append(len(value).to_bytes(8, "little"))
        for item in value:
            _encode(item, base, out)
        return
    if type_name in _NUMPY_TYPES:
        out.append(np.asarray(value, dtype=_NUMPY_TYPES[type_name]).tobytes())
    elif type_name.startswith(("string", "wstring")):
        data = value.encode("utf-8")
        out += [len(data).to_bytes(8, "little"), data]
    else:  # a nested message
        _encode_message(value, out, skip=())


def _encode_message(msg, out: list[bytes], skip: tuple[str, ...]) -> None:
    name = type(msg).__name__.encode()
    out += [len(name).to_bytes(8, "little"), name]
    for name, type_name in _fields(msg).items():
        if name not in skip:
            _encode(getattr(msg, name), type_name, out)


def signed_bytes(msg) -> bytes:
    """Every field of `msg` but auth.mac, unambiguously encoded."""
    out: list[bytes] = []
    _encode_message(msg, out, skip=("auth",))
    _encode_message(msg.auth, out, skip=("mac",))
    return b"".join(out)


def _mac(key: bytes, msg) -> str:
    return hmac.new(key, signed_bytes(msg), hashlib.sha256).hexdigest()


# ---- sign and verify ---------------------------------------------------------------------------
class Signer:
    """Signs the messages one process sends; `sender` names the process (role and a fresh id)."""

    def __init__(self, key: bytes, role: str):
        self.key = key
        self.token = run_token(key)
        self.sender = f"{role}/{uuid.uuid4().hex[:12]}"
        self.counter = 0

    def sign(self, msg):
        self.counter += 1
        msg.auth.run_token, msg.auth.sender, msg.auth.counter = self.token, self.sender, self.counter
        msg.auth.mac = _mac(self.key, msg)
        return msg


class Verifier:
    """Checks the messages of one subscription (counters are per topic, so one Verifier each)."""

    def __init__(self, key: bytes):
        self.key = key
        self.token = run_token(key)
        self.last_counter: dict[str, int] = {}

    def verify(self, msg) -> None:
        """Raise AuthError unless `msg` was signed by a process of this run and is not a replay."""
        auth = msg.auth
        if auth.run_token != self.token:
            shown = auth.run_token[:TOKEN_HEX] or "none"
            raise AuthError(f"not from this run (token {shown!r}, this run is {self.token!r})")
        if not hmac.compare_digest(str(auth.mac), _mac(self.key, msg)):
            raise AuthError(f"bad signature from {auth.sender[:40]!r} (forged or altered)")
        last = self.last_counter.get(auth.sender, 0)
        if auth.counter <= last:
            raise AuthError(f"replayed message from {auth.sender!r} (counter {auth.counter}, last {last})")
        self.last_counter[auth.sender] = auth.counter
