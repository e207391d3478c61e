"""Serving a saved model over HTTP: `serve(path)` (CLI: `modernbert-tasks serve PATH`).

`app.py` holds the FastAPI app, `gate.py` the gate in front of it, `batching.py` and
`predicting.py` the dynamic batching, `metrics.py` the Prometheus text, `page.py` the page.
FastAPI and uvicorn come with the `serve` extra: pip install 'modernbert-tasks[serve]'.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .settings import ServeSettings

__all__ = [
    "serve",
    "create_app",
    "load_for_serving",
    "settings_from",
    "require_serve_deps",
    "SERVE_HINT",
    "SERVE_PRECISIONS",
]

SERVE_HINT = (
    "Serving needs FastAPI and uvicorn, which are not installed: pip install 'modernbert-tasks[serve]'"
)
# bf16 alone can flip close calls (docs/deploying.md); a server answers as predict's fp32 labels
SERVE_PRECISIONS = ("auto", "fp32", "mixed")


def require_serve_deps() -> None:
    """A ConfigError with the one-line install hint when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError(SERVE_HINT) from None


def __getattr__(name: str) -> Any:
    if name == "create_app":
        require_serve_deps()
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def settings_from(
    *,
    max_batch_size: int = 64,
    max_wait_ms: float = 5.0,
    api_key_env: str | None = None,
    max_inputs: int = 256,
    max_chars: int = 50_000,
    max_body_bytes: int = 2 * 1024 * 1024,
    batch_workers: int = 1,
    warmup_length: int = 128,
) -> ServeSettings:
    """ServeSettings, with the API key read from the environment variable `api_key_env`
    (a key is never an argument: it would show in shell history and `ps`)."""
    from .settings import ServeSettings

    key = None
    if api_key_env is not None:
        key = os.environ.get(api_key_env)
        if not key or not key.strip():
            raise ConfigError(
                f"api_key_env={api_key_env!r} names an environment variable that "
                f"is {'empty' if key is not None else 'not set'}. Set it first "
                f"(export {api_key_env}=<a long random secret>), or serve without "
                "api_key_env."
            )
    return ServeSettings(
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_inputs=max_inputs,
        max_chars=max_chars,
        max_body_bytes=max_body_bytes,
        api_key=key,
        batch_workers=batch_workers,
        warmup_length=warmup_length,
    )


def load_for_serving(
    path: str | os.PathLike,
    *,
    precision: str = "auto",
    device: Any = None,
    max_length: int | None = None,
    long_text: str | None = None,
    stride: int | None = None,
    aggregate: str | None = None,
) -> Any:
    """`load_finetuned` as the server uses it: safetensors only, no remote code. long_text,
    stride, aggregate: as in `load_finetuned` (default: the manifest's). "auto" serves fp32 on
    a CPU, where "mixed" would be predict's default."""
    if precision not in SERVE_PRECISIONS:
        raise ConfigError(
            f"precision={precision!r} is not served; expected one of "
            f"{', '.join(SERVE_PRECISIONS)} (all give fp32's labels)."
        )
    from ..hardware import best_device
    from ..inference.loading import load_finetuned

    if precision == "auto" and str(device if device is not None else best_device()).startswith("cpu"):
        # bf16 under load grew the server's memory without bound in sight (MiniLM, 32 clients,
        # AMD EPYC with AVX512-BF16: RSS +91% in 2 minutes, still rising, for 1.3x fp32's
        # throughput); fp32 stays flat (memory.py). `--precision mixed` asks for it.
        precision = "fp32"

    return load_finetuned(
        path,
        device,
        precision=precision,
        max_length=max_length,
        long_text=long_text,
        stride=stride,
        aggregate=aggregate,
    )


def serve(
    path: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_batch_size: int = 64,
    max_wait_ms: float = 5.0,
    api_key_env: str | None = None,
    precision: str = "auto",
    device: Any = None,
    max_length: int | None = None,
    long_text: str | None = None,
    stride: int | None = None,
    aggregate: str | None = None,
    max_inputs: int = 256,
    max_chars: int = 50_000,
    max_body_bytes: int = 2 * 1024 * 1024,
    batch_workers: int = 1,
    warmup_length: int = 128,
    log_level: str = "warning",
) -> None:
    """Serve the model folder `path` over HTTP until SIGTERM or Ctrl-C, which drain: requests
    already received are answered, new ones get 503, then it returns.

    Routes: POST /predict (TEI's shape), POST / (the Inference API's, for
    `huggingface_hub.InferenceClient`), GET /health, /info, /metrics (Prometheus), / (a page
    to try texts) and /docs. Binds to loopback by default; `api_key_env` names the environment
    variable holding the key clients send as `Authorization: Bearer <key>`. `batch_workers`
    groups can compute at once, each on its own thread (default 1). `long_text`, `stride`,
    `aggregate`: how long texts are read, as in `load_finetuned` (default: the model's manifest).
    Before the port listens, each worker predicts one group of `max_batch_size` texts of
    `warmup_length` tokens (0: no warm-up), so memory grows less under load. Serving in
    fp32, oneDNN's primitive cache is off (ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 unless the
    environment sets it; memory.py): with it, memory grew with every new group shape.
    The limits and their defaults are in docs/deploying.md.
    """
    require_serve_deps()
    import uvicorn

    from .app import create_app
    from .gate import ServerState
    from .memory import bound_primitive_cache
    from .server import DrainingServer

    settings = settings_from(
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        api_key_env=api_key_env,
        max_inputs=max_inputs,
        max_chars=max_chars,
        max_body_bytes=max_body_bytes,
        batch_workers=batch_workers,
        warmup_length=warmup_length,
    )
    sock = _bind(host, port)  # before loading: a taken port fails in a second, not a minute
    try:
        model = load_for_serving(
            path,
            precision=precision,
            device=device,
            max_length=max_length,
            long_text=long_text,
            stride=stride,
            aggregate=aggregate,
        )
        # before the first forward pass: oneDNN's per-shape cache grew for minutes (memory.py)
        bound_primitive_cache(model.precision)
        state = ServerState()
        app = create_app(model, settings, state)
        config = uvicorn.Config(
            app, log_level=log_level, access_log=False, lifespan="on", timeout_keep_alive=5
        )
        announce = _announcement(path, host, sock, model, settings, api_key_env)
        # printed once the port listens: after the app's startup (the warm-up)
        server = DrainingServer(config, state, on_ready=announce)
        server.run(sockets=[sock])
    finally:
        sock.close()


def _announcement(
    path: Any, host: str, sock: socket.socket, model: Any, settings: ServeSettings, api_key_env: str | None
) -> Callable[[], None]:
    """What `serve` prints on stderr once it listens: the URL, and a warning off loopback."""

    def announce() -> None:
        shown = f"[{host}]" if ":" in host else host
        task = model.task.name if model.task else "no manifest"
        print(
            f"Serving {path} ({task}; labels {', '.join(model.labels)}; precision "
            f"{model.precision}) at http://{shown}:{sock.getsockname()[1]}  (page: /, API: "
            "/docs; SIGTERM or Ctrl-C drains and stops)",
            file=sys.stderr,
            flush=True,
        )
        if not _is_loopback(host):
            key = (
                f"an API key is required (from ${api_key_env})"
                if settings.api_key
                else "NO API key is set: anyone who can reach this port can use it (--api-key-env NAME)"
            )
            print(
                f"Listening on {host}: the server is reachable from the network; {key}.",
                file=sys.stderr,
                flush=True,
            )

    return announce


def _bind(host: str, port: int) -> socket.socket:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port={port!r}; expected a port number from 0 to 65535 (0 picks a free one).")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({exc.strerror or exc}). Pick "
            "another port=, or stop what is using it."
        ) from None
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
