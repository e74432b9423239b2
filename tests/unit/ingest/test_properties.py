"""Property: whatever arrives, nothing escapes as an exception and every value is accounted for.

Malformed, oversized, wrong-typed, wrong-unit, NaN/Inf, far-future and duplicate payloads are
thrown at the normalizer; accepted + rejected + duplicates + ignored readings must equal the
values of the readable messages, and each unreadable message must be exactly one reject.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinloop.core.clock import ManualClock
from twinloop.core.protocols import RawMessage
from twinloop.ingest.normalizer import NormalizePolicy, Normalizer
from twinloop.twins.registry import TypeRegistry

sys.path.insert(0, str(Path(__file__).parent))
from ingest_fixtures import T0, TWINS, TYPES, S, make_mapping  # noqa: E402

LIMIT = 400
CHANNELS = ["flow", "speed", "running", "power_factor", "bearing.temperature", "bearing.temp_f",
            "flow_lps", "flow_raw", "debug.x", "nope"]
normal = st.one_of(st.floats(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
values = st.one_of(
    normal, normal, normal, st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(), st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2),
)
flat_messages = st.fixed_dictionaries({
    "device": st.sampled_from(["p1", "p2", "ghost"]),
    "seq": st.one_of(st.none(), st.integers(min_value=0, max_value=20)),
    "ts": st.one_of(st.sampled_from([T0, T0 + S, T0 - S]), st.sampled_from([T0 + 2 * S, T0 + 3600 * S]),
                    st.integers(min_value=T0 - 10**18, max_value=T0 + 10**18)),
    "values": st.dictionaries(st.sampled_from(CHANNELS), values, max_size=8),
    "pad": st.integers(min_value=0, max_value=LIMIT),
})
garbage = st.one_of(st.binary(max_size=60),
                    st.sampled_from([b"{}", b"[]", b"null", b'{"values": 3}', b"\xff"]))


def _encode(m: dict[str, Any]) -> bytes:
    body = {k: v for k, v in m.items() if k != "pad" and v is not None}
    body["x"] = "." * m["pad"]  # sometimes pushes the payload over the limit
    return json.dumps(body).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(flat_messages.map(lambda m: ("flat", m)), garbage.map(lambda g: ("junk", g))),
                max_size=25),
       st.lists(st.integers(min_value=0, max_value=24), max_size=6),
       st.sampled_from([0, 2 * S]))
def test_every_value_is_accounted_for(items: list[tuple[str, Any]], dups: list[int], window: int) -> None:
    registry = TypeRegistry(TYPES)
    n = Normalizer(make_mapping(), registry, dict(TWINS), ManualClock(T0),
                   NormalizePolicy(max_payload_bytes=LIMIT, reorder_window_ns=window))
    messages, expected_values, expected_whole = [], 0, 0
    for kind, item in items:
        payload = _encode(item) if kind == "flat" else item
        messages.append(RawMessage("mqtt", "plant/p1/telemetry" if kind == "junk" else
                                   f"plant/{item['device']}/telemetry", payload, T0))
    messages += [messages[i] for i in dups if i < len(messages)]  # redeliveries
    for raw in messages:
        try:
            obj = json.loads(raw.payload)
        except ValueError:
            obj = None
        readable = isinstance(obj, dict) and isinstance(obj.get("values"), dict) and "ts" in obj
        if readable and len(raw.payload) <= LIMIT:
            expected_values += len(obj["values"])  # type: ignore[union-attr]
        else:
            expected_whole += 1
    results = [n.normalize(messages[:10]), n.normalize(messages[10:]), n.flush()]
    accepted = sum(len(r.batch) for r in results)
    per_reading = sum(1 for r in results for x in r.rejected if x.item is not None)
    whole = sum(1 for r in results for x in r.rejected if x.item is None)
    dup = sum(r.duplicates for r in results)
    ignored = sum(r.ignored for r in results)
    assert accepted + per_reading + dup + ignored == expected_values
    assert whole == expected_whole
    assert sum(len(r.completed) for r in results) == len(messages)  # every message acknowledged once
    for r in results:
        assert all(x.reason and x.message and x.topic for x in r.rejected)
        assert r.batch.table.column("value").null_count == 0
