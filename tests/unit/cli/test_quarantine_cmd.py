"""``twinloop quarantine list | replay | discard`` on a DuckDB store in a temporary directory."""

import json
import time

import pytest
from typer.testing import CliRunner

from twinloop.cli import quarantine_cmd
from twinloop.cli.main import app as main_app
from twinloop.core.commands import CreateTwin
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path

runner = CliRunner()


@pytest.fixture
def data(tmp_path):
    """A store seeded with the example plant, holding one good and three rejected readings."""
    d = tmp_path / "d"
    assert runner.invoke(main_app, ["init", "--example", "--data-dir", str(d)]).exit_code == 0
    now = time.time_ns()
    body = {"readings": [
        {"twin_id": "pump-A1", "channel": "flow", "ts": now, "value": 100.0},
        {"twin_id": "pump-X1", "channel": "flow", "ts": now, "value": 7.0},
        {"twin_id": "pump-A1", "channel": "speed", "ts": now, "value": 99_999.0},
        {"twin_id": "pump-A1", "channel": "colour", "ts": now, "value": 1.0},
    ]}
    with Runtime.open(load_settings(data_dir=d, plant=example_plant_path(), ingest=False)) as rt:
        report = rt.ingest.ingest(json.dumps(body).encode(), None, actor="test")  # type: ignore[attr-defined]
        assert report.rejected == 3
    return ["--data-dir", str(d)]


PLANT = ["--plant", str(example_plant_path())]


def run(*args: str):
    return runner.invoke(quarantine_cmd.app, list(args), catch_exceptions=False)


def test_every_command_has_help():
    for args in ([], ["list"], ["replay"], ["discard"]):
        r = run(*args, "--help")
        assert r.exit_code == 0 and "Usage" in r.output, args


def test_list_as_table_and_json_with_filters(data):
    r = run("list", *data)
    assert r.exit_code == 0, r.output
    for word in ("unknown_twin", "out_of_range", "unknown_channel", "pump-X1", "3 open"):
        assert word in r.output
    r = run("list", "--json", *data)
    items = json.loads(r.output)
    assert [i["reason"] for i in items] == ["unknown_twin", "out_of_range", "unknown_channel"]
    assert json.loads(items[0]["payload"])["readings"][0]["twin_id"] == "pump-X1"
    assert items[0]["source"] == "http" and items[0]["payload_encoding"] == "utf-8"
    only = json.loads(run("list", "--json", "--reason", "out_of_range", *data).output)
    assert [i["value"] for i in only] == [99_999.0]
    assert [i["twin_id"] for i in json.loads(run("list", "--json", "--twin", "pump-X1", *data).output)] \
        == ["pump-X1"]
    r = run("list", "--limit", "1", *data)
    assert "--after 1" in r.output


def test_replay_after_the_fix_then_discard(data):
    r = run("replay", "1", *data)
    assert r.exit_code == 2 and "--plant" in r.output and "Traceback" not in r.output
    r = run("replay", "1", *PLANT, *data)
    assert r.exit_code == 0 and "replayed 0" in r.output and "unknown_twin" in r.output
    with Runtime.open(load_settings(data_dir=data[1], plant=example_plant_path(), ingest=False)) as rt:
        attrs = rt.twins.get("pump-A1").attributes
        rt.twins.create(CreateTwin(twin_id="pump-X1", type_id="Pump", attributes=attrs), actor="test")
    r = run("replay", "--twin", "pump-X1", *PLANT, *data)
    assert r.exit_code == 0 and "replayed 1 record(s), 1 reading(s) stored" in r.output
    r = run("discard", "2", "3", "99", *data)
    assert r.exit_code == 0 and "discarded 2" in r.output and "1 were not open" in r.output
    assert json.loads(run("list", "--json", *data).output) == []
    every = json.loads(run("list", "--json", "--status", "all", *data).output)
    assert [(i["id"], i["status"]) for i in every] == [(1, "replayed"), (2, "discarded"), (3, "discarded")]
    with Runtime.open(load_settings(data_dir=data[1], ingest=False)) as rt:
        assert rt.store.latest(["pump-X1"]).values.tolist() == [7.0]
        actions = [a.action for a in rt.store.audit(actor="cli")]
        assert actions == ["quarantine.replay", "quarantine.replay", "quarantine.discard"]


def test_mistakes_get_one_line_and_a_hint(data):
    for args, words in ((["replay"], "name the records"), (["replay", "1", "--all"], "not both"),
                        (["list", "--status", "lost"], "unknown status"),
                        (["list", "--reason", "bad_vibes"], "unknown reason")):
        r = run(*args, *data)
        assert r.exit_code == 1 and words in r.output and "Traceback" not in r.output, args
    r = run("discard", *data)
    assert r.exit_code == 2 and "Missing argument" in r.output
    r = run("replay", "--all", "--mapping", "/nonexistent/mapping.yaml", *PLANT, *data)
    assert r.exit_code == 1 and "mapping" in r.output and "Traceback" not in r.output
