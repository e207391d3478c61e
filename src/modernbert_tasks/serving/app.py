"""The HTTP app: TEI-shaped `/predict`, the Inference API's `POST /`, health, info, metrics
and a page for people, behind the gate (gate.py) every request passes.

Every answer comes from `FineTunedModel.predict` (or `.logits` for raw scores) on a batch of
requests, so the server's labels and probabilities are predict's: temperature, thresholds,
multi-label sigmoid, regression, pairs, truncation marks, skipped empty texts and (precision
"mixed") the re-scored flag included. The bodies are in schemas.py, the errors in
error_handlers.py, the batching in batching.py and predicting.py.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from .. import __version__
from ..inference.predictor import FineTunedModel
from .batching import Batcher
from .error_handlers import ServeError, add_error_handlers
from .gate import Gate, ServerState
from .metrics import CONTENT_TYPE, Metrics
from .page import render_page
from .predicting import GroupRunner
from .schemas import ERROR_RESPONSES, InferenceRequest, Prediction, PredictRequest, PredictResponse
from .settings import DEFAULTS, ServeSettings

__all__ = ["ServeSettings", "ServerState", "create_app", "DEFAULTS"]


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
    workers = settings.batch_workers
    runner = GroupRunner(model, metrics, settings.max_batch_size, workers)
    batcher = Batcher(
        runner,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        on_batch=metrics.batch,
        workers=workers,
        thread_started=runner.thread_started,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.warmup_length:  # before the port listens: the allocator settles first
            await batcher.on_every_worker(lambda: runner.warm_up(settings.warmup_length))
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()
            runner.close()

    app = FastAPI(
        title="modernbert-tasks",
        version=__version__,
        lifespan=lifespan,
        description=f"Predictions of {_model_name(model)} ({_task_line(model)}), "
        "equal to `load_finetuned(path).predict`.",
    )
    app.state.model, app.state.settings, app.state.metrics = model, settings, metrics
    app.state.batcher, app.state.server = batcher, state
    add_error_handlers(app)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
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
        responses=ERROR_RESPONSES,
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

    info_body = _info(model, settings, runner.threads)

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
                    "option max_chars, --max-chars). Shorten it"
                    + (
                        "."
                        if model.long_text.chunks
                        else f": the model reads only its first {model.max_length:,} tokens."
                    ),
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


def _info(model: FineTunedModel, settings: ServeSettings, threads: int) -> dict[str, Any]:
    manifest = model.manifest or {}
    limits = {k: v for k, v in asdict(settings).items() if k != "api_key"}
    limits["torch_threads_per_worker"] = threads
    return {
        "model": _model_name(model),
        "task": model.task.name if model.task else None,
        "problem_type": model.problem_type,
        "labels": list(model.labels),
        "pair": model.is_pair,
        "text_columns": list(model.task.text_columns) if model.task else None,
        "max_length": model.max_length,
        "long_text": model.long_text.to_dict(),
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
