"""The runner: steps and timestamps, speed against the wall clock, commands at step boundaries, replay."""

import asyncio
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from twinloop.sim.plant import CommandResult, Sample, SimPlant
from twinloop.sim.runner import CommandRouter, SimRunner, Transport

sys.path.insert(0, str(Path(__file__).parent))
from toy_plant import ToyPlant  # noqa: E402

START = 1_700_000_000_000_000_000


class Recorder:
    """A transport that keeps what it is given and sends commands at chosen simulated times."""

    def __init__(self, script: dict[float, tuple[str, str, dict]] | None = None) -> None:
        self.samples: list[tuple[Sample, int]] = []
        self.results: dict[float, asyncio.Future] = {}
        self.script = script or {}
        self.router: CommandRouter | None = None
        self.stopped = False

    async def start(self, router: CommandRouter) -> None:
        self.router = router

    async def on_sample(self, sample: Sample, ts_ns: int) -> None:
        self.samples.append((sample, ts_ns))
        if sample.t_s in self.script:
            self.results[sample.t_s] = self.router.submit(*self.script[sample.t_s])

    async def stop(self) -> None:
        self.stopped = True


def test_the_toy_plant_and_recorder_honour_the_protocols():
    assert isinstance(ToyPlant(), SimPlant)
    assert isinstance(Recorder(), Transport)


async def test_as_fast_as_possible_steps_exactly_and_stamps_simulated_time():
    rec = Recorder()
    runner = SimRunner(ToyPlant(), speed=math.inf, sample_period_s=0.5, start_ns=START, transports=(rec,))
    t0 = time.monotonic()
    stats = await runner.run(duration_s=600)
    assert time.monotonic() - t0 < 5
    assert stats.steps == 1200 and stats.sim_s == 600
    assert [s.t_s for s, _ in rec.samples[:3]] == [0.5, 1.0, 1.5]
    assert rec.samples[-1][1] == START + 600 * 10**9
    assert not rec.stopped  # transports stay up between runs
    await runner.run(duration_s=1)
    assert rec.samples[-1][0].t_s == 601.0
    await runner.close()
    assert rec.stopped


async def test_until_stops_on_the_first_matching_sample():
    runner = SimRunner(ToyPlant(), speed=math.inf)
    stats = await runner.run(until=lambda s: s.t_s >= 42)
    assert stats.steps == 42 and runner.plant.t_s == 42


@pytest.mark.parametrize("speed, period, sim_s", [(20.0, 1.0, 10.0), (3600.0, 1.0, 1800.0)])
async def test_finite_speed_follows_the_wall_clock_without_drift(speed, period, sim_s):
    runner = SimRunner(ToyPlant(), speed=speed, sample_period_s=period)
    t0 = time.monotonic()
    stats = await runner.run(duration_s=sim_s)
    wall = time.monotonic() - t0
    expected = sim_s / speed
    assert stats.steps == round(sim_s / period)
    assert expected * 0.95 <= wall <= expected + 0.25, (wall, expected)
    assert stats.max_lag_s < 0.2


async def test_commands_apply_at_the_next_step_boundary_and_answer_the_sender():
    plant = ToyPlant()
    rec = Recorder({5.0: ("pump-1", "setSpeed", {"speed": 2000}), 6.0: ("pump-1", "setSpeed", {"speed": 9e9}),
                    7.0: ("nope", "stop", {})})
    await SimRunner(plant, speed=math.inf, transports=(rec,)).run(duration_s=30)
    assert [c[:3] for c in plant.commands] == [(5.0, "pump-1", "setSpeed"), (6.0, "pump-1", "setSpeed"),
                                               (7.0, "nope", "stop")]
    ok, too_fast, unknown = (rec.results[t].result() for t in (5.0, 6.0, 7.0))
    assert ok == CommandResult(True, applied={"speed": 2000.0})
    assert not too_fast.ok and "3000" in too_fast.message
    assert not unknown.ok and "nope" in unknown.message
    speeds = [s.values[0][0] for s, _ in rec.samples]
    assert speeds[4] == pytest.approx(1000, abs=3) and speeds[-1] == pytest.approx(2000, abs=3)


async def test_a_plant_that_raises_on_a_command_answers_not_ok_and_keeps_running():
    class Fragile(ToyPlant):
        def apply_command(self, device_id, name, args):
            raise RuntimeError("boom")

    rec = Recorder({2.0: ("pump-1", "stop", {})})
    stats = await SimRunner(Fragile(), speed=math.inf, transports=(rec,)).run(duration_s=5)
    assert stats.steps == 5
    assert not rec.results[2.0].result().ok and "boom" in rec.results[2.0].result().message


async def test_same_seed_and_commands_give_the_same_run():
    def script():
        return {3.0: ("pump-1", "setSpeed", {"speed": 2500}), 9.0: ("pump-1", "stop", {})}

    runs = []
    for _ in range(2):
        rec = Recorder(script())
        await SimRunner(ToyPlant(seed=7, dropout_every=5), speed=math.inf, start_ns=START,
                        transports=(rec,)).run(duration_s=20)
        runs.append(rec.samples)
    for (a, ta), (b, tb) in zip(*runs, strict=True):
        assert ta == tb and a.t_s == b.t_s
        for va, vb in zip(a.values, b.values, strict=True):
            np.testing.assert_array_equal(va, vb)
    other = Recorder(script())
    await SimRunner(ToyPlant(seed=8), speed=math.inf, transports=(other,)).run(duration_s=20)
    assert other.samples[0][0].values[0][0] != runs[0][0][0].values[0][0]


async def test_stop_ends_a_run_and_stops_transports_and_refuses_queued_commands():
    rec = Recorder()
    runner = SimRunner(ToyPlant(), speed=100.0, transports=(rec,))
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(0.1)
    runner.stop()
    stats = await asyncio.wait_for(task, 2)
    assert stats.steps > 0 and rec.stopped
    late = runner.submit("pump-1", "stop", {})
    assert late.done() and not late.result().ok


async def test_a_stop_asked_before_the_run_begins_is_not_forgotten():
    """A simulator told to stop while it still connects (SIGTERM, its parent gone) must not run on."""
    rec = Recorder()
    runner = SimRunner(ToyPlant(), speed=100.0, transports=(rec,))
    runner.stop()
    stats = await asyncio.wait_for(runner.run(), 60)  # at once; it used to run until stopped again
    assert stats.steps == 0 and rec.samples == []
    again = await runner.run(duration_s=3)  # a later run is a new run
    assert again.steps == 3


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="speed"):
        SimRunner(ToyPlant(), speed=0)
    with pytest.raises(ValueError, match="sample_period_s"):
        SimRunner(ToyPlant(), sample_period_s=math.inf)
