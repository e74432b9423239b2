import json

from typer.testing import CliRunner

from twinloop.cli.main import app
from twinloop.runtime.wiring import example_plant_path

runner = CliRunner()
TYPES = example_plant_path().parent / "types"


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_every_command_has_help():
    for args in ([], ["types"], ["twins"], ["keys"], ["init"], ["serve"], ["demo"], ["alerts"],
                 ["quarantine"], ["rul"], ["simulate"], ["calibrate"],
                 ["types", "validate"], ["types", "import-dtdl"], ["types", "export-dtdl"],
                 ["twins", "list"], ["twins", "show"], ["keys", "create"]):
        r = run(*args, "--help")
        assert r.exit_code == 0 and "Usage" in r.output, args


def test_types_validate_the_example_and_reject_bad_files(tmp_path):
    r = run("types", "validate", str(TYPES))
    assert r.exit_code == 0 and "Pump" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Broken\nchannels:\n  - {name: flow, unit: furlongs_per_blarg}\n")
    r = run("types", "validate", str(bad))
    assert r.exit_code == 1
    assert "bad.yaml" in r.output and "channels" in r.output and "Traceback" not in r.output
    bad.write_text("id: [unclosed\n")
    r = run("types", "validate", str(bad))
    assert r.exit_code == 1 and "bad.yaml" in r.output


def test_dtdl_export_then_import_round_trips(tmp_path):
    out = tmp_path / "plant.dtdl.json"
    assert run("types", "export-dtdl", str(TYPES), "-o", str(out)).exit_code == 0
    doc = json.loads(out.read_text())
    assert {d["@id"].split(":")[-1].split(";")[0] for d in doc} >= {"Pump", "Tank"}
    r = run("types", "import-dtdl", str(out), "-o", str(tmp_path / "types"))
    assert r.exit_code == 0, r.output
    assert run("types", "validate", str(tmp_path / "types")).exit_code == 0


def test_init_list_show_and_keys(tmp_path):
    data = ["--data-dir", str(tmp_path / "d")]
    r = run("init", "--example", *data)
    assert r.exit_code == 0 and "tlk_" in r.output
    again = run("init", *data)
    assert again.exit_code == 0 and "tlk_" not in again.output
    r = run("twins", "list", "--type", "Pump", "--json", *data)
    assert len(json.loads(r.output)) == 12
    r = run("twins", "list", "--where", '{"line": "B"}', *data)
    assert "pump-B4" in r.output and "pump-A1" not in r.output
    assert "partOf" in run("twins", "show", "pump-A1", *data).output
    r = run("twins", "show", "nope", *data)
    assert r.exit_code == 1 and "nope" in r.output
    r = run("keys", "create", "--role", "viewer", "--name", "grafana", *data)
    assert r.exit_code == 0 and "tlk_" in r.output
    assert "grafana" in run("keys", "list", *data).output
    assert run("keys", "create", "--role", "god", *data).exit_code == 1
    assert run("twins", "list", "--where", "{oops", *data).exit_code == 1
