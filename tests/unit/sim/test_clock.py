"""The simulator's announced clock: a line no sample lies above, even when the runner lags and catches up."""

from __future__ import annotations

import numpy as np

from twinloop.ingest.clock import PlantTime, decode_announcement
from twinloop.sim import wire
from twinloop.sim.clock import REANCHOR_NS, AnnouncedClock

S = 1_000_000_000
T0 = 1_767_225_600 * S


def run(clock: AnnouncedClock, lag_s: np.ndarray, speed: float) -> list[tuple[int, int, PlantTime | None]]:
    """Samples (ts, wall) of a 1-s-period runner at ``speed`` that lags ``lag_s[k]`` wall s at step k,
    with the plant time an ingest would derive from the announcements sent so far."""
    out, heard = [], None
    for k, lag in enumerate(lag_s):
        ts = T0 + (k + 1) * S
        wall = T0 + int(k * S / speed + lag * S)
        if clock.observe(ts, wall):
            heard = decode_announcement(wire.encode_clock(*clock.announce(wall)), None)
        out.append((ts, wall, heard))
    return out


def test_a_lagging_runner_that_catches_up_never_looks_like_the_future() -> None:
    rng = np.random.default_rng(3)
    lag = np.zeros(3000)
    lag[500:1500] = np.linspace(0, 20, 1000)  # 20 wall s behind (a CPU hog), then back on schedule
    lag[1500:] = rng.uniform(0, 0.05, 1500)
    samples = run(AnnouncedClock(60.0), lag, 60.0)
    ahead = [(ts - heard.at(wall)) / S for ts, wall, heard in samples if heard is not None]
    assert max(ahead) <= 1.0  # at most one sample period ahead of the announced plant time
    assert min(ahead) > -20 * 60 - 2  # and behind it by no more than the lag itself


def test_announcements_go_out_first_then_every_second_and_when_the_line_moves() -> None:
    clock = AnnouncedClock(60.0)
    assert clock.observe(T0, T0) and clock.observe(T0 + 6 * S, T0 + S // 10)  # due until announced
    clock.announce(T0)
    due = [clock.observe(T0 + k * 6 * S, T0 + k * S // 10) for k in range(1, 25)]  # on schedule
    assert due.index(True) == 9  # after one wall second
    clock.announce(T0 + S)
    assert not clock.observe(T0 + 66 * S, T0 + 11 * S // 10)
    assert clock.observe(T0 + 166 * S, T0 + 11 * S // 10)  # 100 s ahead of the line: said at once


def test_a_pause_of_a_day_of_plant_time_redraws_the_line() -> None:
    clock = AnnouncedClock(60.0)
    clock.observe(T0, T0)
    assert clock.announce(T0) == (T0, T0, 60.0)
    later = T0 + REANCHOR_NS // 60 + 3600 * S  # an hour of wall time past a day of plant time
    assert clock.observe(T0 + S, later)  # the plant resumed where it was
    assert clock.announce(later) == (T0 + S, later, 60.0)


def test_as_fast_as_possible_announces_no_speed_and_a_stop_stands_still() -> None:
    clock = AnnouncedClock(float("inf"))
    clock.observe(T0, T0)
    assert decode_announcement(wire.encode_clock(*clock.announce(T0)), None).speed is None
    sixty = AnnouncedClock(60.0)
    sixty.observe(T0, T0)
    sixty.announce(T0)
    assert sixty.stopped(T0 + S) == (T0 + 60 * S, T0 + S, 0.0)
    assert wire.decode_clock(wire.encode_clock(*sixty.stopped(T0 + S))) == (T0 + 60 * S, T0 + S, 0.0)
