"""The FastAPI application factory: routers, error mapping and OpenAPI metadata."""

from __future__ import annotations

from fastapi import FastAPI

from twinloop import __version__
from twinloop.api import routes_admin, routes_events, routes_graph, routes_state, routes_twins
from twinloop.api.errors import install_error_handlers
from twinloop.runtime.wiring import Runtime

DESCRIPTION = """
The twinloop service API: twins and their graph, latest state, history with aggregation,
events, asset types (DTDL v3) and access control.

Authenticate with an API key: `Authorization: Bearer tlk_…` (or `X-API-Key`). Roles, lowest
first: **viewer** reads; **operator** also sets desired properties and sends commands;
**engineer** also changes twins and relationships; **admin** also manages keys and reads the audit.
"""


def create_app(runtime: Runtime) -> FastAPI:
    """An app serving ``runtime``; the caller owns the runtime's lifetime."""
    app = FastAPI(title="twinloop", version=__version__, description=DESCRIPTION)
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(routes_admin.router)
    app.include_router(routes_twins.router)
    app.include_router(routes_state.router)
    app.include_router(routes_graph.router)
    app.include_router(routes_events.router)
    return app


__all__ = ["create_app"]
