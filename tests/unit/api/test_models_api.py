"""Kept models over HTTP and the CLI: versions with their metadata, never the payload."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from twinloop.api.app import create_app
from twinloop.cli.main import app as cli
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path


def _keep(rt: Runtime) -> None:
    rt.artifacts.save("detector", "pump-A1", {"level": 1.0}, {"twins": ["pump-A1"], "window_ns": [1, 2]})
    rt.artifacts.save("detector", "pump-A1", {"level": 2.0}, {"metrics": {"after": {"loss": 0.1}}})
    rt.artifacts.save("calibration", "pump-B1", {"static_head_m": 48.0}, {"twins": ["pump-B1"]})


def test_models_are_listed_and_shown_with_their_versions(rt, client, as_role) -> None:
    viewer = as_role("viewer")
    assert client.get("/models").status_code == 401
    assert client.get("/models", headers=viewer).json() == []
    _keep(rt)
    every = client.get("/models", headers=viewer).json()
    assert [(m["kind"], m["key"], m["version"]) for m in every] == [
        ("calibration", "pump-B1", 1), ("detector", "pump-A1", 1), ("detector", "pump-A1", 2)]
    assert "payload" not in every[0] and every[1]["meta"]["window_ns"] == [1, 2]
    assert every[1]["meta"]["code_version"] and every[1]["created_at"].startswith("20")
    only = client.get("/models?kind=detector&key=pump-A1", headers=viewer).json()
    assert [m["version"] for m in only] == [1, 2]
    assert client.get("/models?key=pump-B1", headers=viewer).json()[0]["kind"] == "calibration"
    one = client.get("/models/detector/pump-A1", headers=viewer).json()
    assert one["latest"] == 2 and [v["version"] for v in one["versions"]] == [1, 2]
    assert one["versions"][1]["meta"]["metrics"] == {"after": {"loss": 0.1}}
    missing = client.get("/models/prognoser/pump-A1", headers=viewer)
    assert missing.status_code == 404 and "no prognoser artifact" in missing.json()["message"]


def test_a_restarted_runtime_serves_the_versions_kept_before(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, plant=example_plant_path())
    with Runtime.open(settings, bootstrap=True) as rt:
        _keep(rt)
    with Runtime.open(settings) as rt:
        _, token = rt.keys.create("reader", "viewer")
        with TestClient(create_app(rt)) as client:
            body = client.get("/models/detector/pump-A1", headers={"Authorization": f"Bearer {token}"})
            assert body.status_code == 200 and body.json()["latest"] == 2


def test_cli_models_list_and_show(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, plant=example_plant_path())
    with Runtime.open(settings, bootstrap=True) as rt:
        _keep(rt)
    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list", "--data-dir", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["kind"], r["key"], r["version"]) for r in rows] == [
        ("calibration", "pump-B1", 1), ("detector", "pump-A1", 1), ("detector", "pump-A1", 2)]
    table = runner.invoke(cli, ["models", "list", "--kind", "detector", "--data-dir", str(tmp_path)])
    assert table.exit_code == 0 and "pump-A1" in table.output and "pump-B1" not in table.output
    shown = runner.invoke(cli, ["models", "show", "detector", "pump-A1", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0 and "version 2" in shown.output and "loss" in shown.output
    missing = runner.invoke(cli, ["models", "show", "prognoser", "pump-A1", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "no prognoser artifact" in missing.output
