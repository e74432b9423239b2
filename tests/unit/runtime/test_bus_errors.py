"""A failing bus handler is logged once per handler and twin, with its trace, and once when it recovers."""

from __future__ import annotations

import logging

from twinloop.core.events import TwinCreated
from twinloop.runtime.bus import EventBus


def test_a_failing_handler_is_logged_once_per_twin_and_once_on_recovery(caplog) -> None:
    bus = EventBus()
    broken = {"a", "b"}
    seen: list[str] = []

    def flaky(event) -> None:
        if event.twin_id in broken:
            raise RuntimeError(f"cannot handle {event.twin_id}")
        seen.append(event.twin_id)

    bus.on_event(flaky)
    bus.on_event(lambda e: seen.append("other:" + e.twin_id))
    with caplog.at_level(logging.INFO, logger="twinloop.runtime.bus"):
        bus.publish([TwinCreated(twin_id="a")] * 3 + [TwinCreated(twin_id="b")] * 2)
        failures = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "cannot handle a" in (failures[0].exc_text or "") and "'a'" in failures[0].getMessage()
        assert len(failures) == 2, "one log per (handler, twin), not one per event"
        assert "flaky" in failures[0].getMessage()
        assert len(bus.failing()) == 2
        broken.discard("a")
        bus.publish([TwinCreated(twin_id="a")] * 2)
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1 and "'a'" in recovered[0].getMessage()
    assert seen.count("a") == 2 and seen.count("other:a") == 5, "other handlers never miss an event"
    assert [t for _, t in bus.failing()] == ["b"]
