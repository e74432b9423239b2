"""Runs a `SimPlant` against a clock: steps it at ``speed``× wall time and hands each sample to transports.

Time is scheduled against ``time.monotonic`` from the run's start (step ``k`` is due at
``k * sample_period_s / speed`` wall seconds), so a slow tick never makes the simulation drift;
at high speed several steps run per wall tick, and ``speed=math.inf`` runs as fast as the
transports allow (tests, backfills). Commands from transports queue up and apply at the next
step boundary in arrival order, so a run is reproducible from the plant's seed and the same
command sequence: the runner itself draws no random numbers.

>>> import asyncio, math
>>> import numpy as np
>>> from twinloop.sim.plant import ChannelSpec, CommandResult, DeviceSpec, Sample
>>> class Still:
...     name = "still"; devices = (DeviceSpec("d", "T", (ChannelSpec("x", "1"),)),); t_s = 0.0
...     def step(self, dt): self.t_s += dt
...     def sample(self): return Sample(self.t_s, (np.zeros(1),), np.ones(1, bool))
...     def apply_command(self, d, n, a): return CommandResult(True)
...     def ground_truth(self): return {}
>>> asyncio.run(SimRunner(Still(), speed=math.inf).run(duration_s=5)).steps
5
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from twinloop.sim.plant import CommandResult, Sample, SimPlant

log = logging.getLogger(__name__)

#: Shortest wall time between two wake-ups at finite speed; steps due meanwhile run together.
MIN_TICK_S = 0.01
#: When this far behind schedule (wall seconds), the runner says so once and again on recovery.
LAG_WARN_S = 1.0


@runtime_checkable
class CommandRouter(Protocol):
    """What a transport may ask of the runner: apply a command at the next step boundary."""

    def submit(self, device_id: str, name: str, args: dict[str, Any]) -> asyncio.Future[CommandResult]: ...

    def epoch_ns(self, t_s: float) -> int: ...


@runtime_checkable
class Transport(Protocol):
    """A wire the plant is served over (MQTT, OPC UA, a test recorder)."""

    async def start(self, router: CommandRouter) -> None:
        """Connect/announce (births, online status) and begin taking commands."""
        ...

    async def on_sample(self, sample: Sample, ts_ns: int) -> None:
        """Publish one sample; ``ts_ns`` is the simulated instant as epoch nanoseconds."""
        ...

    async def stop(self) -> None:
        """Say goodbye (offline status, deaths) and stop taking commands."""
        ...


@dataclass(frozen=True)
class RunStats:
    """How a run went: steps taken, simulated and wall seconds, worst lag behind schedule."""

    steps: int
    sim_s: float
    wall_s: float
    max_lag_s: float


@dataclass
class _Pending:
    device_id: str
    name: str
    args: dict[str, Any]
    future: asyncio.Future[CommandResult]


class SimRunner:
    """Advances a plant in ``sample_period_s`` steps at ``speed``× wall clock and serves it over transports.

    ``start_ns`` anchors simulated time to the epoch (default: now, at construction) so that
    ``ts`` on the wire reads as calendar time; pass it to make payloads reproducible too.
    """

    def __init__(self, plant: SimPlant, speed: float = 1.0, sample_period_s: float = 1.0,
                 *, start_ns: int | None = None, transports: tuple[Transport, ...] = ()) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (math.inf for as fast as possible), got {speed}")
        if not (sample_period_s > 0 and math.isfinite(sample_period_s)):
            raise ValueError(f"sample_period_s must be a positive number, got {sample_period_s}")
        self.plant = plant
        self.speed = float(speed)
        self.sample_period_s = float(sample_period_s)
        self.start_ns = time.time_ns() if start_ns is None else int(start_ns)
        self._t0_s = float(plant.t_s)
        self._transports: list[Transport] = list(transports)
        self._started: list[Transport] = []
        self._pending: list[_Pending] = []
        self._stopping = False
        self._stop_asked = False
        self._failing: set[int] = set()
        self.steps = 0
        self.last_sample: Sample | None = None

    # --- wiring ---------------------------------------------------------------------------------

    def add_transport(self, transport: Transport) -> None:
        self._transports.append(transport)

    def epoch_ns(self, t_s: float) -> int:
        """Epoch nanoseconds of simulated instant ``t_s``."""
        return self.start_ns + int(round((t_s - self._t0_s) * 1e9))

    def submit(self, device_id: str, name: str, args: dict[str, Any]) -> asyncio.Future[CommandResult]:
        """Queue a command for the next step boundary; the future resolves with the plant's answer."""
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        if self._stopping:
            future.set_result(CommandResult(False, "the simulator is stopping"))
        else:
            self._pending.append(_Pending(device_id, name, dict(args), future))
        return future

    def stop(self) -> None:
        """Ask a running `run` to finish after the current step (safe from a signal handler).

        Asked before a run begins (a SIGTERM, or a parent gone, while the transports still connect),
        the next `run` returns at once instead of forgetting it.
        """
        self._stopping = True
        self._stop_asked = True

    # --- running --------------------------------------------------------------------------------

    async def run(self, duration_s: float | None = None,
                  until: Callable[[Sample], bool] | None = None) -> RunStats:
        """Run for ``duration_s`` simulated seconds, until ``until(sample)`` is true, or until `stop`.

        Transports are started on the first run and stay up between runs (so a test can run, look,
        and run on); `stop` or `close` takes them down with offline status.
        """
        if self._stop_asked:
            self._stop_asked = False
            await self.close()
            return RunStats(0, 0.0, 0.0, 0.0)
        self._stopping = False
        n_max = math.inf if duration_s is None else round(duration_s / self.sample_period_s)
        started_at = time.monotonic()
        k, max_lag, lagging = 0, 0.0, False
        await self._start_transports()
        try:
            while k < n_max and not self._stopping:
                sample = await self._step()
                k += 1
                if until is not None and until(sample):
                    break
                if math.isinf(self.speed):
                    await asyncio.sleep(0)  # let transports deliver commands and flush
                    continue
                due = started_at + k * self.sample_period_s / self.speed
                lag = time.monotonic() - due
                max_lag = max(max_lag, lag)
                if lag > LAG_WARN_S and not lagging:
                    lagging = True
                    log.warning("simulation is %.1f s behind wall schedule at %gx; transports are too slow "
                                "for this speed and sample period", lag, self.speed)
                elif lagging and lag < MIN_TICK_S:
                    lagging = False
                    log.info("simulation caught up with the wall schedule")
                if lag < 0:
                    # Wake when the next step is due, but not more often than every MIN_TICK_S: at high
                    # speed the steps that fall due meanwhile then run back to back on the next tick.
                    await asyncio.sleep(max(-lag, MIN_TICK_S))
                elif k % 64 == 0:
                    await asyncio.sleep(0)  # behind or on time: keep the event loop breathing
        finally:
            self._apply_pending()
            if self._stopping:
                self._stop_asked = False  # this run honoured it
                await self.close()
        return RunStats(k, k * self.sample_period_s, time.monotonic() - started_at, max(max_lag, 0.0))

    async def close(self) -> None:
        """Stop every started transport (offline status, deaths); refuse commands still queued."""
        self._stopping = True
        self._reject_pending("the simulator stopped")
        for transport in reversed(self._started):
            try:
                await transport.stop()
            except Exception:
                log.exception("transport %s failed to stop cleanly", type(transport).__name__)
        self._started.clear()

    async def _start_transports(self) -> None:
        for transport in self._transports:
            if transport not in self._started:
                await transport.start(self)
                self._started.append(transport)

    async def _step(self) -> Sample:
        self._apply_pending()
        self.plant.step(self.sample_period_s)
        self.steps += 1
        sample = self.plant.sample()
        self.last_sample = sample
        ts_ns = self.epoch_ns(sample.t_s)
        for i, transport in enumerate(self._started):
            try:
                await transport.on_sample(sample, ts_ns)
            except Exception as err:
                if i not in self._failing:
                    self._failing.add(i)
                    log.warning("transport %s failed to publish (%s); will keep trying",
                                type(transport).__name__, err)
            else:
                if i in self._failing:
                    self._failing.discard(i)
                    log.info("transport %s publishes again", type(transport).__name__)
        return sample

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, []
        for p in pending:
            if p.future.done():  # the caller gave up (cancelled)
                continue
            try:
                result = self.plant.apply_command(p.device_id, p.name, p.args)
            except Exception as err:  # a plant bug must not kill the run; the sender learns why
                log.exception("plant failed on command %s to %s", p.name, p.device_id)
                result = CommandResult(False, f"the simulator failed applying {p.name}: {err}")
            p.future.set_result(result)

    def _reject_pending(self, why: str) -> None:
        pending, self._pending = self._pending, []
        for p in pending:
            if not p.future.done():
                p.future.set_result(CommandResult(False, why))


__all__ = ["LAG_WARN_S", "MIN_TICK_S", "CommandRouter", "RunStats", "SimRunner", "Transport"]
