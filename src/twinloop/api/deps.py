"""Typed FastAPI dependencies: the runtime, and the calling principal checked against an action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime

_bearer = HTTPBearer(auto_error=False, description="API key: 'Authorization: Bearer tlk_…'")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key, alternative")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def require(action: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks they may perform ``action``."""

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        runtime: Runtime = request.app.state.runtime
        token = bearer.credentials if bearer else header_key
        principal = runtime.keys.authenticate(token)
        principal.require(action)
        return principal

    dependency.__name__ = f"require_{action.replace(':', '_')}"
    return dependency


__all__ = ["get_runtime", "require"]
