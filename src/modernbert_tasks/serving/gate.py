"""The gate every request passes before the app: a pure ASGI middleware that counts requests
and their latency, refuses new requests while draining (503), checks the API key (401) and
the body size (413) before anything is read or parsed."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .metrics import Metrics
from .settings import ServeSettings

__all__ = ["Gate", "ServerState", "ERROR_KINDS", "ROUTES", "send_error"]

OPEN_PATHS = {"/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
ROUTES = {"/", "/predict", "/health", "/info", "/metrics", "/docs", "/redoc", "/openapi.json"}
ERROR_KINDS = {
    400: "validation",
    401: "auth",
    404: "not_found",
    405: "not_found",
    413: "too_large",
    422: "validation",
    503: "draining",
}


@dataclass
class ServerState:
    """What the gate and the shutdown share: requests being answered, and whether SIGTERM
    asked the server to drain."""

    in_flight: int = 0
    draining: bool = False


class _BodyTooLarge(Exception):
    pass


class Gate:
    """In front of everything: counts requests and their latency, refuses new requests while
    draining (503), checks the API key (401) and the body size (413, also for chunked bodies
    without Content-Length) before the app reads anything."""

    def __init__(self, app: Any, state: ServerState, settings: ServeSettings, metrics: Metrics) -> None:
        self.app, self.server, self.settings, self.metrics = app, state, settings, metrics
        self._key = settings.api_key.encode() if settings.api_key else None
        self.state: Any = None  # the app's state (model, metrics, batcher), set by create_app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_status)
        finally:
            path = scope["path"]
            self.metrics.request(
                scope["method"], path if path in ROUTES else "other", status, time.perf_counter() - start
            )
            if status >= 400:
                self.metrics.error(ERROR_KINDS.get(status, "internal" if status >= 500 else "validation"))

    async def _handle(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        if self.server.draining:
            await send_error(
                send,
                503,
                "The server is shutting down: it finishes the requests "
                "it has and takes no new ones. Retry on another replica.",
                "draining",
                [(b"connection", b"close"), (b"retry-after", b"1")],
            )
            return
        if self._key is not None and not _is_open(scope) and not self._authorized(headers):
            given = "authorization" in headers
            await send_error(
                send,
                401,
                (
                    "The API key in the Authorization header is not this server's key. Send "
                    "'Authorization: Bearer <key>' with the key the server was started with."
                    if given
                    else "This server needs an API key: send the header 'Authorization: Bearer <key>'."
                ),
                "auth",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        limit = self.settings.max_body_bytes
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_error(send, 400, f"Content-Length {length!r} is not a number.", "validation")
                return
            if declared > limit:
                await send_error(send, 413, _too_large(declared, limit), "too_large")
                return
        self.server.in_flight += 1
        try:
            await self._limited(scope, receive, send, limit)
        finally:
            self.server.in_flight -= 1

    async def _limited(self, scope: dict, receive: Callable, send: Callable, limit: int) -> None:
        seen, over, started = 0, False, False

        async def counting_receive() -> dict:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if over:  # the app's answer to the cut body is replaced by the 413 below
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if over and not started:
            await send_error(send, 413, _too_large(seen, limit, streamed=True), "too_large")

    def _authorized(self, headers: dict[str, bytes]) -> bool:
        scheme, _, token = headers.get("authorization", b"").partition(b" ")
        # constant-time comparison: the time taken says nothing about how much of it matched
        key = self._key
        return key is not None and scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key)


def _is_open(scope: dict) -> bool:
    # the page itself holds no data (it asks for the key); health is for load balancers
    return scope["path"] in OPEN_PATHS or (scope["path"] == "/" and scope["method"] == "GET")


def _too_large(size: int, limit: int, streamed: bool = False) -> str:
    what = "more than" if streamed else ""
    return (
        f"The request body has {what} {size:,} bytes; this server takes at most {limit:,} "
        "(server option max_body_bytes, --max-body-bytes). Send fewer or shorter texts per "
        "request."
    ).replace("has  ", "has ")


async def send_error(
    send: Callable, status: int, message: str, kind: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON error answered straight from ASGI (before the app, so without FastAPI)."""
    body = json.dumps({"error": message, "error_type": kind}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
