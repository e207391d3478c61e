"""Every error the app answers, as JSON `{"error", "error_type"}` with the right status:
`ServeError` raised by the routes, pydantic's validation errors reworded to say what was
expected, the model's own ConfigError/DataError (422), unknown routes, and anything else
(500, logged; the server keeps serving)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ConfigError, DataError
from .gate import ERROR_KINDS

__all__ = ["ServeError", "add_error_handlers"]

logger = logging.getLogger("modernbert_tasks.serving")


class ServeError(Exception):
    """A request the server refuses: `status`, the message, and its kind for /metrics."""

    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status)


def add_error_handlers(app: FastAPI) -> None:
    handlers: dict[Any, Callable[[Request, Any], Awaitable[JSONResponse]]] = {}

    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind)

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = ERROR_KINDS.get(exc.status_code, "http")
        detail = exc.detail
        if exc.status_code == 404:
            detail = (
                f"No route {request.url.path!r}. Routes: POST /predict, POST /, GET "
                "/health, /info, /metrics, / (a page) and /docs."
            )
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path!r}; see /docs."
        return _error(exc.status_code, str(detail), kind)

    async def model_error(request: Request, exc: Exception) -> JSONResponse:
        return _error(422, str(exc), "validation")

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("request %s %s failed", request.method, request.url.path)
        return _error(
            500,
            f"The model failed on this request ({type(exc).__name__}: {exc}); "
            "the server keeps serving. See the server log.",
            "internal",
        )

    handlers.update(
        {
            ServeError: serve_error,
            RequestValidationError: invalid,
            HTTPException: http_error,
            DataError: model_error,
            ConfigError: model_error,
            Exception: internal,
        }
    )
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        where = first.get("loc", ("body", 0))[-1]
        return _error(
            400,
            f"The request body is not valid JSON ({first.get('ctx', {}).get('error')}"
            f" at character {where}). Send a JSON object such as "
            '{"inputs": "a text"} with Content-Type: application/json.',
            "validation",
        )
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    field_name = loc[0] if loc else "body"
    if first.get("type") in ("model_attributes_type", "dict_type") and not loc:
        return _error(
            422,
            'The request body must be a JSON object such as {"inputs": '
            '"a text"}, sent with Content-Type: application/json; got '
            f"{_clip(first.get('input'))}.",
            "validation",
        )
    if field_name == "inputs":
        given = next(
            (
                e.get("input")
                for e in errors
                if tuple(e.get("loc", ()))[:2] == ("body", "inputs") and len(e.get("loc", ())) == 2
            ),
            None,
        )
        shown = (
            "nothing"
            if first.get("type") == "missing"
            else _clip(given if given is not None else first.get("input"))
        )
        return _error(
            422,
            "inputs must be a text, a list of texts, or a list of [text_a, "
            f"text_b] pairs (every item the same kind); got {shown}.",
            "validation",
        )
    return _error(
        422,
        f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid')}; got {_clip(first.get('input'))}.",
        "validation",
    )


def _clip(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
