import json
import os
import subprocess
import sys

import pytest
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


# --- a fast CLI: what `twinloop --help` and `twinloop twins list` load ------------------------------

#: Heavy dependencies no command may load just to print its help (typer itself may use pydantic).
HEAVY = ("numpy", "pyarrow", "pint", "duckdb", "pydantic_settings", "yaml", "scipy", "sklearn", "pandas",
         "uvicorn", "fastapi", "starlette", "asyncua", "amqtt", "paho", "httpx")
#: What only live analytics, the API server or the wire protocols need: never loaded to list twins.
NOT_TO_LIST_TWINS = ("scipy", "sklearn", "pandas", "pint", "uvicorn", "fastapi", "starlette", "asyncua",
                     "amqtt", "paho", "twinloop.analytics", "twinloop.estimate", "twinloop.api",
                     "twinloop.connectors", "twinloop.physics", "twinloop.sim")
COMMANDS = ([], ["types"], ["twins"], ["twins", "list"], ["keys"], ["init"], ["serve"], ["demo"],
            ["alerts"], ["alerts", "list"], ["quarantine"], ["quarantine", "replay"], ["rul"],
            ["rul", "show"], ["models"], ["simulate"], ["calibrate"])


def _loaded_by(args: list[str], cwd=None) -> tuple[int, str, set[str]]:
    """Run ``twinloop ARGS`` in a fresh interpreter; its exit code, output and the modules it loaded."""
    script = "\n".join([
        "import json, sys",
        "from twinloop.cli.main import app",
        "code = 0",
        "try:",
        "    app(sys.argv[1:], prog_name='twinloop')",
        "except SystemExit as e:",
        "    code = e.code or 0",
        "print('\\nMODULES=' + json.dumps(sorted(sys.modules)))",
        "sys.exit(code)",
    ])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINLOOP_")} | {"COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env,
                       cwd=cwd, timeout=300)
    out, _, modules = r.stdout.rpartition("\nMODULES=")
    return r.returncode, out + r.stderr, set(json.loads(modules or "[]"))


def _within(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "twinloop")
def test_help_loads_no_heavy_dependency_and_no_runtime(args):
    code, out, modules = _loaded_by([*args, "--help"])
    assert code == 0 and "Usage" in out, out
    assert not _within(modules, HEAVY), _within(modules, HEAVY)
    twinloop = {m for m in modules if m.startswith("twinloop")}
    assert twinloop <= {"twinloop"} | {m for m in twinloop if m.startswith("twinloop.cli")}, twinloop


def test_help_still_lists_every_command():
    r = run("--help")
    for name in ("types", "twins", "keys", "quarantine", "rul", "alerts", "simulate", "calibrate", "demo",
                 "init", "serve"):
        assert name in r.output
    assert "Validate asset types; import and export DTDL v3." in r.output


def test_listing_twins_loads_no_analytics_api_or_wire_protocol(tmp_path):
    data = ["--data-dir", str(tmp_path / "d")]
    assert run("init", "--example", *data).exit_code == 0
    code, out, modules = _loaded_by(["twins", "list", "--json", *data], cwd=tmp_path)
    assert code == 0 and len(json.loads(out)) == 22, out
    assert not _within(modules, NOT_TO_LIST_TWINS), _within(modules, NOT_TO_LIST_TWINS)


def test_only_init_mints_the_bootstrap_key_and_reading_commands_do_not(tmp_path):
    data = ["--data-dir", str(tmp_path / "d")]
    r = run("twins", "list", *data)  # a new, empty store: listing it must not hand out an admin key
    assert r.exit_code == 0 and "tlk_" not in r.output
    assert "bootstrap-admin" not in run("keys", "list", *data).output
    r = run("init", *data)
    assert r.exit_code == 0 and "tlk_" in r.output
    assert "bootstrap-admin" in run("keys", "list", *data).output
