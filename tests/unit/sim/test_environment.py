"""Environment profiles: day/night, weekends, heatwaves, what-if demand, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.core.errors import ValidationError
from twinloop.sim.environment import DAY_S, Environment, ambient_temperature, demand


def test_afternoon_is_warmer_than_night_every_day() -> None:
    env = Environment(seed=3)
    days = np.arange(14) * DAY_S
    assert np.all(env.ambient_temperature(days + 15 * 3600) > env.ambient_temperature(days + 4 * 3600))


def test_summer_is_warmer_than_winter() -> None:
    t = np.arange(0, 7 * DAY_S, 3600.0)
    summer = Environment(day_of_year=200).ambient_temperature(t).mean()
    winter = Environment(day_of_year=20).ambient_temperature(t).mean()
    assert summer > winter + 10


def test_heatwave_adds_eight_to_ten_kelvin_on_its_days_only() -> None:
    t = np.arange(0, 5 * DAY_S, 600.0)
    base = Environment(seed=2).ambient_temperature(t)
    hot = Environment(seed=2, heatwave_days=(2,)).ambient_temperature(t)
    extra = hot - base
    midday = (t >= 2 * DAY_S + 12 * 3600) & (t <= 2 * DAY_S + 16 * 3600)
    assert np.all((extra[midday] >= 8.0) & (extra[midday] <= 10.0))
    assert np.all(extra[t < 2 * DAY_S] == 0) and np.all(extra[t >= 3 * DAY_S] == 0)
    assert Environment(heatwave_days=(2,)).is_heatwave(2.5 * DAY_S)


def test_weather_is_smooth_and_seeded() -> None:
    t = np.arange(0, 3 * DAY_S, 60.0)
    a = Environment(seed=1).ambient_temperature(t)
    assert np.max(np.abs(np.diff(a))) < 0.2  # no jumps minute to minute
    assert np.array_equal(a, Environment(seed=1).ambient_temperature(t))
    assert not np.array_equal(a, Environment(seed=9).ambient_temperature(t))


def test_shifts_weekends_and_demand_factor() -> None:
    env = Environment(start_weekday=0)  # Monday 00:00
    mon_day, mon_night = env.demand(10 * 3600.0), env.demand(2 * 3600.0)
    sat_day = env.demand(5 * DAY_S + 10 * 3600.0)
    assert mon_day > mon_night and sat_day < mon_day
    assert float(Environment(demand_factor=1.2).demand(10 * 3600.0)) == pytest.approx(1.2 * float(mon_day))
    assert float(demand(10 * 3600.0)) == pytest.approx(float(mon_day))
    assert ambient_temperature(np.zeros((2, 3))).shape == (2, 3)


def test_invalid_environment_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Environment(start_weekday=7)
    with pytest.raises(ValidationError):
        Environment(demand_factor=-1)
