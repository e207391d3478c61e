"""The HTTP app: TEI-shaped `/predict`, the Inference API's `POST /`, health, info, metrics,
a page for people, and the gate every request passes (drain, API key, body size).

Every answer comes from `FineTunedModel.predict` (or `.logits` for raw scores) on a batch of
requests, so the server's labels and probabilities are predict's: temperature, thresholds,
multi-label sigmoid, regression, pairs, truncation marks and skipped empty texts included.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import ConfigError, DataError
from ..inference.predictor import FineTunedModel
from .batching import Batcher
from .metrics import CONTENT_TYPE, Metrics
from .page import render_page

__all__ = ["ServeSettings", "ServerState", "create_app", "DEFAULTS"]

logger = logging.getLogger("modernbert_tasks.serving")


# --- settings -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ServeSettings:
    """The server's limits and batching; each default is documented in docs/deploying.md."""

    max_batch_size: int = 64  # inputs grouped into one predict call
    max_wait_ms: float = 5.0  # how long the first request of a group waits for company
    max_inputs: int = 256  # inputs in one request
    max_chars: int = 50_000  # characters in one text (ModernBERT reads 8,192 tokens, ~40k chars)
    max_body_bytes: int = 2 * 1024 * 1024  # request body, before parsing
    api_key: str | None = field(default=None, repr=False)  # never printed

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_inputs", "max_chars", "max_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r}; expected a positive integer.")
        wait = self.max_wait_ms
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 10_000:
            raise ConfigError(
                f"max_wait_ms={wait!r}; expected a number of milliseconds from 0 to 10000 (default 5)."
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError(
                "The API key is empty; set the environment variable to a "
                "non-empty secret, or serve without api_key_env."
            )


DEFAULTS = ServeSettings()


@dataclass
class ServerState:
    """What the gate and the shutdown share: requests being answered, and whether SIGTERM
    asked the server to drain."""

    in_flight: int = 0
    draining: bool = False


# --- request and response bodies (they make /docs) ----------------------------------------
Inputs = str | list[str] | list[tuple[str, str]]


class PredictRequest(BaseModel):
    """TEI's `/predict` body, plus `details` for our full records."""

    inputs: Inputs = Field(
        description="a text, a list of texts, or a list of [text_a, text_b] pairs (pair tasks)",
        examples=["a gem of a film"],
    )
    raw_scores: bool = Field(False, description="the model's logits instead of probabilities")
    truncate: bool = Field(
        True, description="read a text longer than the model's max_length up to it; false: answer 413 instead"
    )
    details: bool = Field(
        False,
        description="answer with predict's records (probabilities, "
        "labels, truncated, skipped) instead of TEI's lists",
    )


class InferenceParameters(BaseModel):
    top_k: int | None = Field(None, ge=1, description="keep the K most probable labels")
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = Field(
        None,
        description="'none': logits; otherwise it must be the model's own function "
        "(softmax single-label, sigmoid multi-label), which is the default",
    )


class InferenceRequest(BaseModel):
    """The Hugging Face Inference API body that `InferenceClient.text_classification` posts to
    a base URL."""

    inputs: Inputs
    parameters: InferenceParameters = Field(
        default_factory=lambda: InferenceParameters(top_k=None, function_to_apply=None)
    )


class Prediction(BaseModel):
    label: str
    score: float


class Truncated(BaseModel):
    tokens_read: int
    tokens: int


class Record(BaseModel):
    """One input's `predict` record (fields absent where they do not apply)."""

    label: str | None = None
    score: float | None = None
    probabilities: dict[str, float] | None = None
    labels: list[str] | None = Field(None, description="multi-label: every label decided on")
    truncated: Truncated | None = None
    skipped: str | None = Field(None, description="'empty text': no label was given")


class ErrorBody(BaseModel):
    error: str
    error_type: str


PredictResponse = list[Prediction] | list[list[Prediction]] | Record | list[Record]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 413, 422, 500, 503)
}


class ServeError(Exception):
    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


# --- the gate -----------------------------------------------------------------------------
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


class _BodyTooLarge(Exception):
    pass


class Gate:
    """Pure ASGI middleware in front of everything: counts requests and their latency, refuses
    new requests while draining (503), checks the API key (401) and the body size (413, also
    for chunked bodies without Content-Length) before the app reads anything."""

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
            await _send_error(
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
            await _send_error(
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
                await _send_error(send, 400, f"Content-Length {length!r} is not a number.", "validation")
                return
            if declared > limit:
                await _send_error(send, 413, _too_large(declared, limit), "too_large")
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
            await _send_error(send, 413, _too_large(seen, limit, streamed=True), "too_large")

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


async def _send_error(
    send: Callable, status: int, message: str, kind: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    import json

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


# --- the app ------------------------------------------------------------------------------
def create_app(
    model: FineTunedModel, settings: ServeSettings = DEFAULTS, state: ServerState | None = None
) -> Any:
    """The ASGI app serving `model` (loaded with `load_finetuned`): a FastAPI app behind the
    `Gate`. `app.state` of the FastAPI app (the gate's `.app`) holds model, settings, metrics,
    batcher and server state."""
    state = state or ServerState()
    metrics = Metrics()
    model.warn_truncation = False  # counted in /metrics instead of a log line per batch
    batcher = Batcher(
        lambda inputs, raw: _run_group(model, metrics, inputs, raw, settings.max_batch_size),
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        on_batch=metrics.batch,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="modernbert-tasks",
        version=__version__,
        lifespan=lifespan,
        description=f"Predictions of {_model_name(model)} ({_task_line(model)}), "
        "equal to `load_finetuned(path).predict`.",
    )
    app.state.model, app.state.settings, app.state.metrics = model, settings, metrics
    app.state.batcher, app.state.server = batcher, state
    _add_error_handlers(app)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=ERRORS,
        summary="Classify texts (Text Embeddings Inference's /predict)",
    )
    async def predict(body: PredictRequest) -> JSONResponse:
        """TEI's shape: for a single text, a list of {label, score} (all labels, predict's
        label first, then by score); for a list, one such list per input. An empty text gets
        an empty list (`details: true` says why). `details: true` answers with predict's
        records instead."""
        if body.raw_scores and body.details:
            raise ServeError(
                422,
                "raw_scores and details are two different outputs (logits, "
                "or predict's records); ask for one.",
                "validation",
            )
        if body.raw_scores and not body.truncate:
            raise ServeError(
                422,
                "truncate=false is checked on probability outputs only; drop "
                "raw_scores, or leave truncate at true.",
                "validation",
            )
        items, single = _inputs(body.inputs, model, settings)
        answers = await batcher.submit(items, raw=body.raw_scores)
        if not body.truncate:
            _refuse_truncated(answers, model)
        if body.details:
            out: list[Any] = answers
        elif body.raw_scores:
            out = [_raw_list(row, model) for row in answers]
        else:
            out = [_tei_list(record, model) for record in answers]
        return JSONResponse(out[0] if single else out)

    @app.post(
        "/",
        response_model=list[list[Prediction]],
        responses=ERRORS,
        summary="Classify texts (Hugging Face Inference API; InferenceClient)",
    )
    async def inference_api(body: InferenceRequest) -> JSONResponse:
        """What `InferenceClient(base_url).text_classification(text)` posts: always a list
        of {label, score} lists, one per input."""
        params = body.parameters
        own = (
            "sigmoid"
            if model.problem_type == "multi_label_classification"
            else ("softmax" if model.problem_type != "regression" else "none")
        )
        if params.function_to_apply not in (None, own, "none"):
            raise ServeError(
                422,
                f"function_to_apply={params.function_to_apply!r}: this "
                f"{model.problem_type} model's scores use {own!r} (with its "
                "fitted temperature, if any); pass that, 'none' for logits, or "
                "leave it out.",
                "validation",
            )
        raw = params.function_to_apply == "none" and own != "none"
        items, _ = _inputs(body.inputs, model, settings)
        answers = await batcher.submit(items, raw=raw)
        lists = [_raw_list(a, model) if raw else _tei_list(a, model) for a in answers]
        if params.top_k:
            lists = [row[: params.top_k] for row in lists]
        return JSONResponse(lists)

    @app.get("/health", summary="200 while serving; 503 once shutting down")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    info_body = _info(model, settings)

    @app.get("/info", summary="The model, its task and training summary, and the limits")
    async def info() -> dict[str, Any]:
        return info_body

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
    async def metrics_route() -> PlainTextResponse:
        gauges = {
            "in_flight_requests": ("Requests being answered now.", state.in_flight),
            "queued_requests": ("Requests waiting for a batch.", batcher.waiting),
            "draining": ("1 once SIGTERM asked the server to stop.", float(state.draining)),
        }
        return PlainTextResponse(metrics.render(gauges), media_type=CONTENT_TYPE)

    page = render_page(info_body, needs_key=settings.api_key is not None)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(page)

    gate = Gate(app, state, settings, metrics)
    gate.state = app.state  # so callers of create_app reach model, metrics, batcher
    return gate


def _run_group(
    model: FineTunedModel, metrics: Metrics, inputs: list[Any], raw: bool, batch_size: int
) -> list[Any]:
    """One model call for a group of requests (in the predict thread)."""
    if raw:
        keep = [i for i, x in enumerate(inputs) if _has_text(x)]
        pairs = bool(inputs) and not isinstance(inputs[0], str)
        first = [inputs[i][0] if pairs else inputs[i] for i in keep]
        second = [inputs[i][1] for i in keep] if pairs else None
        precision = "bf16" if model.precision == "bf16" else "fp32"
        logits = model.logits(first, second, batch_size=batch_size, precision=precision)
        out: list[Any] = [None] * len(inputs)
        for row, i in enumerate(keep):
            out[i] = logits[row].tolist()
        metrics.predicted(len(inputs), 0, len(inputs) - len(keep), 0)
        return out
    records = model.predict(inputs, batch_size=batch_size, show_progress=False)
    metrics.predicted(
        len(inputs), model.last_truncation[0], sum("skipped" in r for r in records), model.last_rescored[0]
    )
    return records


def _has_text(item: Any) -> bool:
    return bool(item.strip()) if isinstance(item, str) else any(t.strip() for t in item)


# --- inputs and outputs -------------------------------------------------------------------
def _inputs(inputs: Any, model: FineTunedModel, settings: ServeSettings) -> tuple[list[Any], bool]:
    """(the inputs as predict takes them, whether one text was sent), after the limits and
    the model's kind (single texts or pairs) are checked."""
    single = isinstance(inputs, str)
    items = [inputs] if single else list(inputs)
    if not items:
        raise ServeError(
            422,
            "inputs is an empty list; send a text, a list of texts, or a list of [text_a, text_b] pairs.",
            "validation",
        )
    if len(items) > settings.max_inputs:
        raise ServeError(
            413,
            f"{len(items):,} inputs in one request; this server takes at most "
            f"{settings.max_inputs:,} (server option max_inputs, "
            "--max-inputs). Split them over several requests.",
            "too_large",
        )
    pairs = not isinstance(items[0], str)
    for i, item in enumerate(items):
        for text in item if pairs else (item,):
            if len(text) > settings.max_chars:
                raise ServeError(
                    413,
                    f"Input {i} has {len(text):,} characters; this server "
                    f"takes at most {settings.max_chars:,} per text (server "
                    "option max_chars, --max-chars). Shorten it: the model "
                    f"reads only its first {model.max_length:,} tokens.",
                    "too_large",
                )
    want = model.is_pair
    if want is not None and pairs != want:
        assert model.task is not None  # is_pair is None without a task
        columns = model.task.text_columns
        if want:
            raise ServeError(
                422,
                f"This model classifies pairs of texts ({columns[0]}, "
                f"{columns[1]}); got single texts. Send inputs as "
                '[["text_a", "text_b"], ...].',
                "validation",
            )
        raise ServeError(
            422,
            f"This model classifies single texts ({columns[0]}); got pairs. "
            'Send inputs as "a text" or ["text", ...].',
            "validation",
        )
    return items, single


def _tei_list(record: dict[str, Any], model: FineTunedModel) -> list[dict[str, Any]]:
    """A predict record as TEI's list: predict's label first (with a tuned threshold it can
    be less probable than another label), then the other labels by score; regression gives
    one entry; a skipped (empty) input none."""
    if "skipped" in record:
        return []
    probs = record.get("probabilities")
    if probs is None:  # regression
        return [{"label": model.labels[0], "score": record["score"]}]
    rest = sorted((k for k in probs if k != record["label"]), key=lambda k: -probs[k])
    return [
        {"label": record["label"], "score": record["score"]},
        *({"label": k, "score": probs[k]} for k in rest),
    ]


def _raw_list(logits: list[float] | None, model: FineTunedModel) -> list[dict[str, Any]]:
    if logits is None:
        return []
    pairs = sorted(zip(model.labels, logits, strict=True), key=lambda p: -p[1])
    return [{"label": name, "score": value} for name, value in pairs]


def _refuse_truncated(records: list[dict[str, Any]], model: FineTunedModel) -> None:
    for i, record in enumerate(records):
        cut = record.get("truncated")
        if cut:
            raise ServeError(
                413,
                f"Input {i} has {cut['tokens']:,} tokens; the model reads at "
                f"most {cut['tokens_read']:,}. Send truncate=true to read "
                "its first tokens (the record then says so), or shorten it.",
                "too_large",
            )


def _model_name(model: FineTunedModel) -> str:
    return Path(str(model.path)).name or str(model.path)


def _task_line(model: FineTunedModel) -> str:
    task = model.task.name if model.task else "no manifest"
    return f"task {task}, {model.problem_type}, labels {', '.join(model.labels)}"


def _info(model: FineTunedModel, settings: ServeSettings) -> dict[str, Any]:
    manifest = model.manifest or {}
    limits = {k: v for k, v in asdict(settings).items() if k != "api_key"}
    return {
        "model": _model_name(model),
        "task": model.task.name if model.task else None,
        "problem_type": model.problem_type,
        "labels": list(model.labels),
        "pair": model.is_pair,
        "text_columns": list(model.task.text_columns) if model.task else None,
        "max_length": model.max_length,
        "precision": model.precision,
        "device": str(model.device),
        "version": __version__,
        "api_key_required": settings.api_key is not None,
        "limits": limits,
        "training": {
            "base_model": manifest.get("base_model"),
            "created_at": manifest.get("created_at"),
            "metrics": manifest.get("metrics"),
            "calibration": manifest.get("calibration"),
            "max_length": manifest.get("max_length"),
            "settings": manifest.get("training"),
        }
        if manifest
        else None,
    }


# --- errors as JSON -----------------------------------------------------------------------
def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
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
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
