import asyncio

import pytest

from twinloop.core.clock import ManualClock
from twinloop.core.errors import AuthError, ConfigError, PermissionDenied, ValidationError
from twinloop.core.events import TwinCreated, TwinDeleted
from twinloop.runtime.access import KeyService, role_allows
from twinloop.runtime.bus import EventBus
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime
from twinloop.store.memory import MemoryStore


def test_defaults_need_no_config(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.api_host == "127.0.0.1" and s.resolved_store_url.startswith("duckdb:///")
    assert s.resolved_store_url.endswith(".twinloop/twinloop.duckdb")


def test_env_and_file_and_errors(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "twinloop.yaml").write_text("api_port: 9001\nlog_level: debug\n")
    assert load_settings().api_port == 9001
    monkeypatch.setenv("TWINLOOP_API_PORT", "9002")
    assert load_settings().api_port == 9002
    assert load_settings(api_port=9003).api_port == 9003
    monkeypatch.setenv("TWINLOOP_API_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="api_port"):
        load_settings()
    monkeypatch.delenv("TWINLOOP_API_PORT")
    monkeypatch.setenv("TWINLOOP_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_settings()


def test_keys_roles_and_bootstrap():
    store, clock = MemoryStore(), ManualClock()
    keys = KeyService(store, clock)
    token = keys.bootstrap()
    assert token and keys.bootstrap() is None
    assert keys.authenticate(token).role == "admin"
    secret = token.split("_", 2)[2]  # the secret itself may contain "_"
    assert all(secret not in k.secret_hash and k.secret_hash != secret for k in store.list_keys())
    record, viewer = keys.create("dash", "viewer")
    p = keys.authenticate(viewer)
    p.require("read")
    with pytest.raises(PermissionDenied, match="engineer"):
        p.require("twins:write")
    tampered = viewer[:-1] + ("B" if viewer.endswith("A") else "A")  # one secret character off
    for bad in (None, "", "nonsense", "tlk_x_y", tampered):
        with pytest.raises(AuthError):
            keys.authenticate(bad)
    keys.revoke(record.key_id)
    with pytest.raises(AuthError):
        keys.authenticate(viewer)
    with pytest.raises(ValidationError):
        keys.create("x", "superuser")
    assert role_allows("admin", "twins:write") and not role_allows("operator", "twins:write")
    assert [a.action for a in store.audit()] == ["key.create", "key.create", "key.revoke"]


def test_bootstrap_key_only_on_a_new_store_and_only_when_asked(tmp_path):
    settings = load_settings(store_url=f"duckdb:///{tmp_path / 's.duckdb'}")
    with Runtime.open(settings) as reader:  # a command that only reads mints nothing
        assert reader.bootstrap_token is None and reader.keys.list() == []
    with Runtime.open(settings, bootstrap=True) as first:
        assert first.bootstrap_token
    with Runtime.open(settings, bootstrap=True) as second:
        assert second.bootstrap_token is None
        assert second.keys.authenticate(first.bootstrap_token).role == "admin"


async def test_bus_delivers_filtered_events_and_survives_bad_handlers():
    bus = EventBus(queue_size=2)
    seen = []
    bus.on_event(lambda e: 1 / 0)
    bus.on_event(seen.append)
    sub = bus.subscribe(kinds=["TwinCreated"])
    bus.publish([TwinCreated(twin_id="a"), TwinDeleted(twin_id="a"), TwinCreated(twin_id="b"),
                 TwinCreated(twin_id="c")])
    await asyncio.sleep(0)
    got = [sub.queue.get_nowait().twin_id for _ in range(sub.queue.qsize())]
    assert got == ["b", "c"] and sub.dropped == 1 and len(seen) == 4
    bus.unsubscribe(sub)
    assert bus.subscriber_count == 0
