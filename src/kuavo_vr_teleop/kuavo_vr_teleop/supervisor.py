"""Keeps an input source open: opens it lazily, retries on a period, never raises. Pure.

A missing runtime is an expected state (a robot PC without the headset streaming), so the
node must keep publishing "inactive" and retry, logging the full explanation once and
afterwards at most one short line per retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .controller import ControllerFrame
from .openxr_source import OpenXRUnavailable
from .sources import InputSource, Recorder

# Errors that mean "this source cannot be opened now" rather than a bug in our code.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (OpenXRUnavailable, OSError, ValueError)


@dataclass
class Logs:
    warn: Callable[[str], None] = print
    info: Callable[[str], None] = print
    debug: Callable[[str], None] = lambda msg: None


@dataclass
class SourceSupervisor:
    factory: Callable[[], InputSource | None]
    retry_period_s: float = 5.0
    logs: Logs = field(default_factory=Logs)
    recorder: Recorder | None = None
    source: InputSource | None = None
    attempts: int = 0
    _next_try_s: float | None = None
    _last_error: str | None = None

    @property
    def connected(self) -> bool:
        """A source is open and not lost. False from the very poll that finds it lost, so that the
        owner can end a takeover at once instead of waiting for the input to go stale."""
        return self.source is not None and getattr(self.source, "alive", True)

    def poll(self, now_s: float) -> ControllerFrame | None:
        if self.source is not None and not self.connected:
            self._drop_lost_source(now_s)
        if self.source is None and not self._try_open(now_s):
            return None
        assert self.source is not None
        try:
            frame = self.source.poll()
        except Exception as exc:  # noqa: BLE001 - a source's bug must not stop the node publishing "inactive"
            self.logs.warn(f"input source '{self.source.name}' failed: {type(exc).__name__}: {exc}")
            self.source.alive = False  # type: ignore[union-attr]
            frame = None
        if not self.connected:  # lost during this poll
            self._drop_lost_source(now_s)
            return None
        if frame is not None and self.recorder is not None:
            self.recorder.write(frame)
        return frame

    def _drop_lost_source(self, now_s: float) -> None:
        assert self.source is not None
        self.logs.warn(f"input source '{self.source.name}' was lost; reopening in {self.retry_period_s:g} s")
        self._close_source()
        self._next_try_s = now_s + self.retry_period_s

    def _try_open(self, now_s: float) -> bool:
        if self._next_try_s is not None and now_s < self._next_try_s:
            return False
        self._next_try_s = now_s + self.retry_period_s
        self.attempts += 1
        try:
            source = self.factory()
        except Exception as exc:  # noqa: BLE001 - expected (no runtime) or not, the node goes on and retries
            expected = isinstance(exc, UNAVAILABLE_ERRORS)
            message = str(exc) if expected else f"input source failed to open ({type(exc).__name__}: {exc})"
            if message != self._last_error:  # full explanation once (and again if it changes)
                self.logs.warn(f"{message} (retrying every {self.retry_period_s:g} s)")
                self._last_error = message
            else:
                self.logs.debug(f"input source still unavailable (attempt {self.attempts})")
            return False
        if source is None:  # a "none" source: nothing to open, nothing to retry
            self._next_try_s = float("inf")
            return False
        self.source = source
        if self._last_error is not None:
            self.logs.info(f"input source '{source.name}' opened after {self.attempts} attempts")
            self._last_error = None
        else:
            self.logs.info(f"input source '{source.name}' opened")
        return True

    def _close_source(self) -> None:
        if self.source is not None:
            source, self.source = self.source, None
            try:
                source.close()
            except Exception as exc:  # noqa: BLE001 - a failed teardown must not stop the node either
                self.logs.warn(f"closing input source '{source.name}' failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._close_source()
        if self.recorder is not None:
            self.recorder.close()
