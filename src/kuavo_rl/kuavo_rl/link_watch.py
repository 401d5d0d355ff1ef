"""Is the other machine still there? Each side publishes a signed status every period; a peer
silent for longer than a timeout has lost its link, and hearing from it again ends the outage,
whose length is kept. The learner watches each actor, each actor watches the learner."""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class LinkEvent:
    peer: str
    lost: bool  # True: the link was just lost; False: it just came back
    silent_s: float  # how long the peer had been silent (for a restore: the outage's length)

    def describe(self, what: str) -> str:
        if self.lost:
            return f"link to {what} lost: nothing heard for {self.silent_s:.1f} s"
        return f"link to {what} restored after {self.silent_s:.1f} s"


@dataclass
class LinkWatch:
    """One peer's link, judged by when it was last heard from."""
    peer: str
    timeout_s: float
    clock: callable = time.monotonic
    last_heard: float | None = None
    lost: bool = False
    outages_s: list[float] = field(default_factory=list)  # lengths of the outages that ended

    def heard(self) -> LinkEvent | None:
        """The peer spoke; returns the restore event when this ends an outage."""
        now = self.clock()
        event = None
        if self.lost:
            event = LinkEvent(self.peer, False, now - self.last_heard)
            self.outages_s.append(event.silent_s)
            self.lost = False
        self.last_heard = now
        return event

    def check(self) -> LinkEvent | None:
        """The loss event, once, when the peer has been silent for longer than the timeout."""
        if self.last_heard is None or self.lost:
            return None
        silent = self.silent_s
        if silent <= self.timeout_s:
            return None
        self.lost = True
        return LinkEvent(self.peer, True, silent)

    @property
    def silent_s(self) -> float:
        return 0.0 if self.last_heard is None else self.clock() - self.last_heard

    @property
    def last_outage_s(self) -> float:
        return self.outages_s[-1] if self.outages_s else 0.0

    def describe(self) -> str:
        if self.last_heard is None:
            return "not heard yet"
        if self.lost:
            return f"LOST for {self.silent_s:.0f} s"
        if self.outages_s:
            return f"ok ({len(self.outages_s)} outage(s), last {self.last_outage_s:.1f} s)"
        return "ok"


class PeerLinks:
    """The learner's view of its actors: one LinkWatch per actor_id and the latest status each sent
    (a restarted actor's status replaces its earlier process's)."""

    def __init__(self, timeout_s: float, clock=time.monotonic):
        self.timeout_s, self.clock = timeout_s, clock
        self.watches: dict[str, LinkWatch] = {}
        self.statuses: dict = {}  # actor_id -> its latest ActorStatusInfo

    def heard(self, actor_id: str, status) -> LinkEvent | None:
        watch = self.watches.setdefault(actor_id, LinkWatch(actor_id, self.timeout_s, self.clock))
        self.statuses[actor_id] = status
        return watch.heard()

    def check(self) -> list[LinkEvent]:
        """Newly lost links; an actor that said it finished is expected to fall silent."""
        return [event for peer, watch in self.watches.items()
                if not self.statuses[peer].finished and (event := watch.check()) is not None]

    def all_finished(self) -> bool:
        """Every actor heard from has finished (and the learner has received all its batches)."""
        return bool(self.statuses) and all(status.finished for status in self.statuses.values())

    def describe(self) -> str:
        """For the progress line: only what needs attention (lost links, past outages)."""
        return "; ".join(f"link {peer} {watch.describe()}" for peer, watch in sorted(self.watches.items())
                         if watch.lost or watch.outages_s)
