"""The simulator's announced clock: which plant time goes with which wall time, at what speed.

A simulated plant stamps its readings with simulated time, which at ``--speed 60`` runs 59 s ahead
of the wall clock every second. Ingest can only tell a good timestamp from a broken device clock
if the plant says what time it is, so every transport announces the plant's clock
(``{"sim_time", "wall_time", "speed"}``, see `twinloop.sim.wire`): once before the first sample,
again every ``every_s`` wall seconds and whenever the time line moves, and with speed 0 at stop.

The announced line goes through the *most advanced* sample seen (``ts - wall · speed`` largest):
the runner never steps ahead of its schedule, so no later sample lies above that line, whereas a
sample taken while the runner lags behind would put the line too low, and the catch-up that follows
would then look like readings from the future. A sample a whole day of plant time below the line
means the plant was paused or restarted: the line is drawn anew through it.

>>> c = AnnouncedClock(speed=60.0)
>>> c.observe(ts_ns=1_000, wall_ns=0)                   # the first sample: announce
True
>>> c.announce(wall_ns=0)
(1000, 0, 60.0)
>>> c.observe(ts_ns=1_000 + 10 * 10**9, wall_ns=10**9 // 2)   # 20 s behind: moves nothing
False
>>> c.observe(ts_ns=1_000 + 90 * 10**9, wall_ns=10**9 // 2)   # 60 s ahead: a new line, said at once
True
>>> c.announce(wall_ns=10**9 // 2)
(90000001000, 500000000, 60.0)
"""

from __future__ import annotations

import math

S = 1_000_000_000
#: A sample this far (plant time) below the announced line re-anchors it: the plant was paused.
REANCHOR_NS = 86_400 * S
#: The line moving by more than this much plant time is announced at once, not at the next period.
MOVED_NS = 30 * S


class AnnouncedClock:
    """Tracks the plant's time line from the samples a transport publishes; says when to announce it."""

    def __init__(self, speed: float, every_s: float = 1.0) -> None:
        self.speed: float | None = None if math.isinf(speed) else float(speed)
        self.every_ns = int(every_s * S)
        self._ts = self._wall = 0
        self._seen = False
        self._said: tuple[int, int] | None = None
        self._said_wall = 0

    def observe(self, ts_ns: int, wall_ns: int) -> bool:
        """Take one sample's simulated instant and the wall time it goes out; True: announce now."""
        if not self._seen:
            self._seen = True
            self._ts, self._wall = ts_ns, wall_ns
        gap = self._gap(ts_ns, wall_ns)
        if gap > 0 or gap < -REANCHOR_NS:
            self._ts, self._wall = ts_ns, wall_ns
        if self._said is None:
            return True
        moved = self.speed is not None and abs(self._gap(*self._said)) > MOVED_NS
        return moved or wall_ns - self._said_wall >= self.every_ns

    def _gap(self, ts_ns: int, wall_ns: int) -> float:
        """How far ``ts_ns`` lies above the current line at ``wall_ns`` (ns of plant time)."""
        if self.speed is None:
            return float(ts_ns - self._ts)
        return (ts_ns - self._ts) - (wall_ns - self._wall) * self.speed

    def announce(self, wall_ns: int) -> tuple[int, int, float | None]:
        """``(sim_ns, wall_ns, speed)`` of the line to announce now (the period restarts at ``wall_ns``)."""
        self._said = (self._ts, self._wall)
        self._said_wall = wall_ns
        return self._ts, self._wall, self.speed

    @property
    def announced(self) -> bool:
        """True once a line was announced (before the first sample there is nothing to say)."""
        return self._said is not None

    def stopped(self, wall_ns: int) -> tuple[int, int, float]:
        """The last announcement: the plant's time stands still where it is now."""
        ts = self._ts if self.speed is None else self._ts + int((wall_ns - self._wall) * self.speed)
        return ts, wall_ns, 0.0


__all__ = ["MOVED_NS", "REANCHOR_NS", "AnnouncedClock"]
