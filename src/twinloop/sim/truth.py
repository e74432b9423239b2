"""Records a live plant's hidden truth as JSON lines, so a run can be scored against what happened.

`TruthRecorder` is a `Transport` like MQTT or OPC UA, but its wire is a file: every ``every_s``
plant seconds it appends ``plant.ground_truth()`` (without the history lists, which the events
carry), and on every sample it appends what changed since the last one — a fault starting or
ending, a unit failing (a pump's bearing, a chiller fouled past its limit) or being repaired.
Each line is flushed as written, so a run that is killed still leaves its truth up to the kill.

Lines (``t_s`` plant seconds, ``ts_ns`` the epoch nanoseconds the wire stamps on that instant; every
line also has ``wall_ns``, the wall clock when it was written, so that events a twin raises on the
wall clock can be placed in plant time)::

    {"kind": "start", "plant": "pump-station", "t_s": 0.0, "ts_ns": …, "every_s": 60.0}
    {"kind": "truth", "t_s": …, "ts_ns": …, "truth": {"wear": {"pump-A1": 0.06, …}, …}}
    {"kind": "fault_start" | "fault_end", "t_s": …, "ts_ns": …, "fault": {"id", "kind", "device", …}}
    {"kind": "failure" | "repair", "t_s": …, "ts_ns": …, "device": "pump-A1", "what": "bearing_failure"}
    {"kind": "end", "t_s": …, "ts_ns": …, "fault_history": [...]}
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import IO, Any

from twinloop.sim.plant import Sample, SimPlant
from twinloop.sim.runner import CommandRouter

#: Keys of ``ground_truth()`` that are histories; the event lines carry them instead.
_HISTORIES = ("fault_history", "failures", "repairs")


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None (``json`` would write invalid ``NaN``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class TruthRecorder:
    """A transport that appends the plant's ground truth and its changes to a JSON-lines file."""

    def __init__(self, plant: SimPlant, path: Path | str, every_s: float = 60.0) -> None:
        if not (every_s > 0 and math.isfinite(every_s)):
            raise ValueError(f"every_s must be a positive number, got {every_s}")
        self.plant = plant
        self.path = Path(path)
        self.every_s = float(every_s)
        self._router: CommandRouter | None = None
        self._file: IO[str] | None = None
        self._next_s = -math.inf
        self._active: dict[str, dict[str, Any]] = {}
        self._failures = 0
        self._repairs = 0
        self._degraded: set[str] = set()
        self._last_t: float = float(plant.t_s)

    async def start(self, router: CommandRouter) -> None:
        self._router = router
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        t = float(self.plant.t_s)
        self._write({"kind": "start", "plant": self.plant.name, "t_s": t, "ts_ns": router.epoch_ns(t),
                     "every_s": self.every_s, "devices": [d.id for d in self.plant.devices]})

    async def on_sample(self, sample: Sample, ts_ns: int) -> None:
        self._observe(float(sample.t_s), ts_ns)

    async def stop(self) -> None:
        if self._file is None:
            return
        t = self._last_t
        ts_ns = self._router.epoch_ns(t) if self._router is not None else 0
        truth = self.plant.ground_truth()
        self._write({"kind": "truth", "t_s": t, "ts_ns": ts_ns, "truth": self._snapshot(truth)})
        self._write({"kind": "end", "t_s": t, "ts_ns": ts_ns,
                     "fault_history": truth.get("fault_history", [])})
        self._file.close()
        self._file = None

    # --- internals ------------------------------------------------------------------------------

    def _observe(self, t: float, ts_ns: int) -> None:
        self._last_t = t
        truth = self.plant.ground_truth()
        active = {f["id"]: f for f in truth.get("faults", [])}
        for fid in active.keys() - self._active.keys():
            self._write({"kind": "fault_start", "t_s": t, "ts_ns": ts_ns, "fault": active[fid]})
        for fid in self._active.keys() - active.keys():
            ended = next((f for f in truth.get("fault_history", []) if f["id"] == fid), self._active[fid])
            self._write({"kind": "fault_end", "t_s": t, "ts_ns": ts_ns, "fault": ended})
        self._active = active
        failures, repairs = truth.get("failures", []), truth.get("repairs", [])
        for f in failures[self._failures:]:
            self._write({"kind": "failure", "t_s": float(f.get("t_s", t)), "ts_ns": ts_ns,
                         "device": f.get("device"), "what": f.get("kind", "failure")})
        for r in repairs[self._repairs:]:
            self._write({"kind": "repair", "t_s": float(r.get("t_s", t)), "ts_ns": ts_ns,
                         "device": r.get("device"), "what": r.get("kind", "repair")})
        self._failures, self._repairs = len(failures), len(repairs)
        # Plants without a failure list (the building) report a degraded flag per unit instead.
        degraded = {d for d, flag in truth.get("degraded", {}).items() if flag}
        for d in sorted(degraded - self._degraded):
            self._write({"kind": "failure", "t_s": t, "ts_ns": ts_ns, "device": d, "what": "degraded"})
        for d in sorted(self._degraded - degraded):
            self._write({"kind": "repair", "t_s": t, "ts_ns": ts_ns, "device": d, "what": "restored"})
        self._degraded = degraded
        if t >= self._next_s:
            self._write({"kind": "truth", "t_s": t, "ts_ns": ts_ns, "truth": self._snapshot(truth)})
            self._next_s = t + self.every_s

    @staticmethod
    def _snapshot(truth: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in truth.items() if k not in _HISTORIES and k != "t_s"}

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        record["wall_ns"] = time.time_ns()
        self._file.write(json.dumps(_plain(record), separators=(",", ":")) + "\n")
        self._file.flush()


def read_truth(path: Path | str) -> list[dict[str, Any]]:
    """The records of a truth file in order; a torn last line (a killed run) is dropped."""
    records = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


__all__ = ["TruthRecorder", "read_truth"]
