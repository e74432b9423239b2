"""The FastAPI application factory: routers, error mapping and OpenAPI metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from twinloop import __version__
from twinloop.api import (
    routes_admin,
    routes_alerts,
    routes_artifacts,
    routes_connections,
    routes_estimate,
    routes_events,
    routes_graph,
    routes_ingest,
    routes_rul,
    routes_state,
    routes_twins,
)
from twinloop.api.errors import install_error_handlers
from twinloop.runtime.wiring import Runtime

DESCRIPTION = """
The twinloop service API: twins and their graph, latest state, history with aggregation,
events, asset types (DTDL v3) and access control.

Authenticate with an API key: `Authorization: Bearer tlk_…` (or `X-API-Key`). Roles, lowest
first: **viewer** reads; **operator** also sets desired properties and sends commands;
**engineer** also changes twins and relationships; **admin** also manages keys and reads the audit.
"""


def create_app(runtime: Runtime, *, ingest: bool = False) -> FastAPI:
    """An app serving ``runtime``; the caller owns the runtime's lifetime (opening and closing it).

    ``ingest=True`` starts ingestion (`Runtime.start`) in the server's event loop when the app starts
    and stops it, losing nothing, when the app shuts down (``twinloop serve``/``demo``); tests leave it off.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ingest:
            await runtime.start()
        try:
            yield
        finally:
            if ingest:
                await runtime.stop()

    app = FastAPI(title="twinloop", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.runtime = runtime
    install_error_handlers(app)
    app.include_router(routes_admin.router)
    app.include_router(routes_twins.router)
    app.include_router(routes_state.router)
    app.include_router(routes_graph.router)
    app.include_router(routes_events.router)
    app.include_router(routes_connections.router)
    app.include_router(routes_ingest.router)
    app.include_router(routes_estimate.router)
    app.include_router(routes_rul.router)
    app.include_router(routes_alerts.router)
    app.include_router(routes_artifacts.router)
    return app


__all__ = ["create_app"]
