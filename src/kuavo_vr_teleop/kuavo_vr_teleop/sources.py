"""Where controller frames come from: scripted (tests), replayed recordings, or a headset.

Every source is non-blocking: ``poll()`` returns the newest frame not yet returned, or None.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from .controller import ControllerFrame
from .openxr_source import NO_RUNTIME_HELP, OpenXRSource, OpenXRUnavailable  # re-exported

__all__ = [
    "InputSource",
    "ScriptedSource",
    "ReplaySource",
    "Recorder",
    "read_recording",
    "OpenXRSource",
    "OpenXRUnavailable",
    "NO_RUNTIME_HELP",
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
]

RECORDING_FORMAT = "kuavo_vr_teleop.recording"
RECORDING_VERSION = 1

Clock = Callable[[], float]


@runtime_checkable
class InputSource(Protocol):
    name: str

    def poll(self) -> ControllerFrame | None: ...

    def close(self) -> None: ...


class ScriptedSource:
    """Frames from a list (one per poll, then None) or from a function of elapsed time."""

    name = "scripted"

    def __init__(
        self,
        script: Sequence[ControllerFrame] | Callable[[float], ControllerFrame | None],
        clock: Clock = time.monotonic,
    ) -> None:
        self._script = script
        self._clock = clock
        self._index = 0
        self._t0: float | None = None

    def poll(self) -> ControllerFrame | None:
        if callable(self._script):
            now = self._clock()
            if self._t0 is None:
                self._t0 = now
            return self._script(now - self._t0)
        if self._index >= len(self._script):
            return None
        frame = self._script[self._index]
        self._index += 1
        return frame

    def close(self) -> None:
        pass


class Recorder:
    """Writes frames as JSON lines after a header line ``{"format", "version", "source"}``."""

    def __init__(self, path: str | Path, source: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        header = {"format": RECORDING_FORMAT, "version": RECORDING_VERSION, "source": source}
        self._file.write(json.dumps(header) + "\n")
        self._file.flush()

    def write(self, frame: ControllerFrame) -> None:
        if self._file is None:
            raise ValueError("recorder is closed")
        self._file.write(json.dumps(frame.to_dict()) + "\n")
        # Flush each line: a recording that survives a crash is the point of recording.
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_recording(path: str | Path) -> tuple[dict, list[ControllerFrame]]:
    """Header and frames of a recording; rejects files that are not our format."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{path}: empty recording")
    header = json.loads(lines[0])
    if header.get("format") != RECORDING_FORMAT:
        raise ValueError(f"{path}: not a {RECORDING_FORMAT} file (header {header!r})")
    if header.get("version") != RECORDING_VERSION:
        raise ValueError(f"{path}: unsupported recording version {header.get('version')!r}")
    frames = [ControllerFrame.from_dict(json.loads(line)) for line in lines[1:] if line.strip()]
    return header, frames


class ReplaySource:
    """Replays a recording with its original relative timing.

    Frame i becomes due once ``frame_i.time_s - frame_0.time_s`` has elapsed since the first
    poll. A poll returns the newest due frame not yet returned (older due frames are skipped,
    as a live source would drop them), so a slow poller stays in real time. Returned frames are
    re-stamped onto the replay clock (``time_s = start + recorded offset``) so that their times
    keep increasing across loops, as consumers that reject old frames require.
    """

    def __init__(self, path: str | Path, clock: Clock = time.monotonic, loop: bool = False) -> None:
        header, self._frames = read_recording(path)
        self.name = "replay"
        self.recorded_source = str(header.get("source", ""))
        self._clock = clock
        self._loop = loop
        self._next = 0  # index of the first frame not yet returned
        self._t0: float | None = None

    @property
    def finished(self) -> bool:
        return not self._loop and self._next >= len(self._frames)

    def poll(self) -> ControllerFrame | None:
        if not self._frames:
            return None
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        if self._next >= len(self._frames):
            if not self._loop:
                return None
            self._t0 = now
            self._next = 0
        elapsed = now - self._t0
        base = self._frames[0].time_s
        due = self._next
        while due < len(self._frames) and self._frames[due].time_s - base <= elapsed:
            due += 1
        if due == self._next:
            return None
        self._next = due
        frame = self._frames[due - 1]
        return replace(frame, time_s=self._t0 + (frame.time_s - base))

    def close(self) -> None:
        pass
