"""The one place where twinloop's error tree becomes HTTP: a status and a JSON message, no traces."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from twinloop.core.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    StoreError,
    TwinloopError,
    ValidationError,
)

log = logging.getLogger("twinloop.api")

#: Most specific first.
STATUS: list[tuple[type[TwinloopError], int]] = [
    (PermissionDenied, 403),
    (AuthError, 401),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ValidationError, 422),
    (StoreError, 503),
    (ConfigError, 500),
]


def status_for(err: TwinloopError) -> int:
    for cls, status in STATUS:
        if isinstance(err, cls):
            return status
    return 400


def _body(error: str, message: str, hint: str | None = None) -> dict[str, str]:
    body = {"error": error, "message": message}
    if hint:
        body["hint"] = hint
    return body


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to a JSON answer; unexpected ones are logged, never shown."""

    @app.exception_handler(TwinloopError)
    async def _twinloop(_: Request, err: TwinloopError) -> JSONResponse:
        status = status_for(err)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(
            _body(type(err).__name__, err.message, err.hint), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in err.errors()
        ]
        return JSONResponse(
            {**_body("ValidationError", "; ".join(problems)), "problems": problems},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(_body("HTTPError", str(err.detail)), status_code=err.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            _body("InternalError", "internal error; the server log has the details"),
            status_code=500,
        )


__all__ = ["install_error_handlers", "status_for"]
