"""A periodic one-line status with rate and ETA, for long work."""
from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:d}:{seconds % 60:02d}"


class ProgressLine:
    def __init__(self, total: int, label: str, period_s: float = 5.0, stream=sys.stderr, enabled: bool = True,
                 clock=time.monotonic):
        self.total, self.label, self.period_s = total, label, period_s
        self.stream, self.enabled, self.clock = stream, enabled, clock
        self.started = clock()
        self._last_print = -float("inf")

    def due(self, force: bool = False) -> bool:
        """The next update prints (forced, or period_s since the last line)."""
        return force or self.clock() - self._last_print >= self.period_s

    def update(self, done: int, extra: str = "", force: bool = False, eta_s: float | None = None) -> str | None:
        """eta_s: a better estimate of the remaining time than done/rate, when the caller has one."""
        now = self.clock()
        if not self.due(force):
            return None
        self._last_print = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = eta_s if eta_s is not None else (self.total - done) / rate if rate > 0 else float("nan")
        eta_text = format_duration(eta) if eta == eta else "?"
        line = (f"[{self.label}] {done}/{self.total} ({100.0 * done / max(self.total, 1):.0f}%) "
                f"{rate:.1f}/s elapsed {format_duration(elapsed)} ETA {eta_text}" + (f" | {extra}" if extra else ""))
        if self.enabled:
            print(line, file=self.stream, flush=True)
        return line
