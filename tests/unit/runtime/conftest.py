import pytest

from twinloop.core.clock import ManualClock
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_767_225_600 * 10**9)  # 2026-01-01T00:00:00Z


@pytest.fixture
def rt(clock):
    settings = load_settings(store_url="memory://", plant=example_plant_path())
    with Runtime.open(settings, clock=clock, bootstrap=True) as runtime:
        yield runtime
