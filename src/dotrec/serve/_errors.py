"""Errors as JSON (``{"error": ..., "detail": ...}``) and the request body limit.

Statuses: 404 for an unknown user or item ID (and an unknown endpoint), 413
for a body over the limit, 422 for a request that does not validate (bad K,
wrong types, malformed JSON) or a model folder refused on reload, 401/403 for
the admin endpoints, 400 for what the model cannot do, 500 for bugs.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dotrec.exceptions import DotrecError, UnknownIDError

__all__ = ["BodyLimit", "ServiceError", "error_response", "install_error_handlers"]

_log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error the service answers with ``status`` and a JSON body."""

    def __init__(self, status: int, message: str, detail: Any = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, headers


def error_response(status: int, message: str, detail: Any = None, headers=None) -> JSONResponse:
    """The JSON error body every failure uses."""
    body = {"error": message, "detail": jsonable_encoder(detail)}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure with :func:`error_response`."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, err: ServiceError) -> JSONResponse:
        return error_response(err.status, err.message, err.detail, err.headers)

    @app.exception_handler(UnknownIDError)
    async def unknown_id(request: Request, err: UnknownIDError) -> JSONResponse:
        ids = [_clipped(i) for i in err.ids]
        return error_response(404, _unknown_message(err), {"kind": err.kind, "ids": ids})

    @app.exception_handler(DotrecError)
    async def dotrec_error(request: Request, err: DotrecError) -> JSONResponse:
        return error_response(400, str(err))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = err.errors()
        return error_response(422, _summarize(errors), _validation_detail(errors))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        message = str(err.detail)
        if err.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif err.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(err.status_code, message, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> JSONResponse:
        _log.exception("error answering %s %s", request.method, request.url.path)
        return error_response(
            500, "internal error; the server log has the details", type(err).__name__
        )


def _unknown_message(err: UnknownIDError) -> str:
    shown = ", ".join(repr(_clipped(i)) for i in err.ids[:10])
    more = f" and {len(err.ids) - 10} more" if len(err.ids) > 10 else ""
    plural = "s" if len(err.ids) > 1 else ""
    hint = (
        " Ask with fallback=popular to get the most popular items for unknown users."
        if err.kind == "user"
        else ""
    )
    return f"unknown {err.kind} ID{plural} {shown}{more}: not in the training data.{hint}"


_SHOWN_ERRORS = 20
"""Validation errors listed in ``detail``; a body of 1,000 bad IDs has 1,000."""

_SHOWN_INPUT = 60
"""Longest input (as JSON) repeated in an error; longer ones are left out."""


def _validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``detail`` of a 422: where, what and which kind, for the first errors.

    The value seen (``input``) is kept only when it is a short number or
    text: repeating a list of 200,000 user IDs back to the client, as
    FastAPI does by default, makes an error larger than the request.
    """
    shown = []
    for e in errors[:_SHOWN_ERRORS]:
        entry = {key: e[key] for key in ("loc", "msg", "type") if key in e}
        if _short(e.get("input")):
            entry["input"] = e["input"]
        shown.append(entry)
    return shown


def _short(value: Any) -> bool:
    """A value small enough to repeat, and one JSON can carry (not NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return False
    scalar = value is None or isinstance(value, (str, int, float, bool))
    return scalar and len(repr(value)) <= _SHOWN_INPUT


def _clipped(raw_id: Any) -> Any:
    """An ID as an error repeats it: long text cut to ``_SHOWN_INPUT`` characters."""
    text = str(raw_id)
    if len(text) <= _SHOWN_INPUT:
        return raw_id
    return f"{text[:_SHOWN_INPUT]}... ({len(text)} characters)"


def _summarize(errors: list[dict[str, Any]]) -> str:
    """One line naming each invalid field (the first three), for the ``error`` key."""
    parts = []
    for e in errors[:3]:
        where, *path = [str(part) for part in e.get("loc", ())] or ["request"]
        if e.get("type") == "json_invalid":
            reason = (e.get("ctx") or {}).get("error", e.get("msg"))
            at = f" at character {path[0]}" if path else ""
            parts.append(f"the body is not valid JSON ({reason}{at})")
            continue
        name = {"query": "query parameter", "path": "path parameter", "body": "body field"}
        field = ".".join(path)
        label = f"{name.get(where, where)} {field}" if field else "the body"
        got = e.get("input")
        shown = f" (got {got!r})" if got is not None and _short(got) else ""
        parts.append(f"{label}: {e.get('msg')}{shown}")
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    listed = (
        f" ({len(errors)} errors; detail lists the first {_SHOWN_ERRORS})"
        if len(errors) > _SHOWN_ERRORS
        else ""
    )
    return "invalid request: " + "; ".join(parts) + more + listed


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before any of the
    body is read; a chunked body is counted as it arrives and refused once
    it passes the limit, before it is parsed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"request body larger than the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            detail = {"limit_bytes": self.max_bytes, "content_length": int(declared)}
            await error_response(413, self._message(), detail)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI passes an HTTPException from reading the body on to
                # the handlers, which answer it as JSON.
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, counted, send)
