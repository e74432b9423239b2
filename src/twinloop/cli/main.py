"""``twinloop``: the command line of the platform. Every command has ``--help``.

``twinloop --help`` (and each command's) must start at once, so the command modules import what
is heavy (the runtime, the store, numpy, the API) inside the commands; ``tests/unit/cli`` checks it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from twinloop import __version__
from twinloop.cli import (
    alerts_cmd,
    calibrate_cmd,
    demo_cmd,
    keys_cmd,
    models_cmd,
    quarantine_cmd,
    rul_cmd,
    simulate_cmd,
    twins_cmd,
    types_cmd,
)
from twinloop.cli.context import (
    DataDir,
    PlantFile,
    StoreUrl,
    console,
    friendly_errors,
    open_runtime,
    print_bootstrap_key,
    settings_from,
)

if TYPE_CHECKING:
    from twinloop.runtime.wiring import Runtime

app = typer.Typer(
    help="twinloop: AI digital twins of physical assets: model, mirror, intervene, act.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(types_cmd.app, name="types")
app.add_typer(twins_cmd.app, name="twins")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(quarantine_cmd.app, name="quarantine")
app.add_typer(rul_cmd.app, name="rul")
app.add_typer(alerts_cmd.app, name="alerts")
app.add_typer(models_cmd.app, name="models")
app.command("simulate")(simulate_cmd.simulate)
app.command("calibrate")(calibrate_cmd.calibrate_twin)
app.command("demo")(demo_cmd.demo)

Host = Annotated[str | None, typer.Option(help="bind address [env TWINLOOP_API_HOST]")]
Port = Annotated[int | None, typer.Option(help="port [env TWINLOOP_API_PORT]")]


def _version(value: bool) -> None:
    if value:
        console.print(f"twinloop {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="show the version")
    ] = False,
) -> None:
    """twinloop: AI digital twins of physical assets."""


@app.command()
def init(
    data_dir: DataDir = None,
    store: StoreUrl = None,
    plant: PlantFile = None,
    example: Annotated[bool, typer.Option(help="seed the example pump station")] = False,
) -> None:
    """Create a store (and seed a plant); prints the first admin key once."""
    with friendly_errors():
        from twinloop.runtime.wiring import example_plant_path

        plant = example_plant_path() if example and plant is None else plant
        with open_runtime(settings_from(data_dir, store, plant), bootstrap=True) as rt:
            console.print(f"store ready: {rt.settings.resolved_store_url} "
                          f"({len(rt.twins.graph)} twins, {len(rt.registry.ids())} asset types)")
            if rt.bootstrap_token is None:
                console.print("[dim]this store already has keys; create more with "
                              "`twinloop keys create --role …`[/]")
            print_bootstrap_key(rt.bootstrap_token)


def _serve(rt: Runtime, host: str, port: int) -> None:
    import uvicorn

    from twinloop.api.app import create_app

    console.print(f"serving the API on [bold]http://{host}:{port}[/] "
                  f"(docs: http://{host}:{port}/docs); Ctrl-C stops", soft_wrap=True)
    sys.stdout.flush()
    try:
        uvicorn.run(create_app(rt, ingest=True), host=host, port=port, log_level=rt.settings.log_level)
    finally:
        rt.close()


@app.command()
def serve(
    host: Host = None,
    port: Port = None,
    data_dir: DataDir = None,
    store: StoreUrl = None,
    plant: PlantFile = None,
) -> None:
    """Serve the API over the configured store."""
    with friendly_errors():
        from twinloop.runtime.settings import load_settings

        settings = load_settings(api_host=host, api_port=port, data_dir=data_dir,
                                 store_url=store, plant=plant)
        rt = open_runtime(settings, bootstrap=True)
        print_bootstrap_key(rt.bootstrap_token)
        _serve(rt, settings.api_host, settings.api_port)


__all__ = ["app"]
