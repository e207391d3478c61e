"""`serve`: a saved model folder behind an HTTP API (needs the `serve` extra)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK
from .predict import add_long_text_arguments

SERVE_EPILOG = """\
examples:
  modernbert-tasks serve runs/sst2/model
  modernbert-tasks serve runs/sst2/model --port 9000 --max-batch-size 32
  MY_KEY=$(openssl rand -hex 24) modernbert-tasks serve runs/sst2/model \\
      --host 0.0.0.0 --api-key-env MY_KEY

  curl -s localhost:8080/predict -H 'Content-Type: application/json' \\
       -d '{"inputs": ["a gem of a film", "a tedious mess"]}'

Routes: POST /predict (Text Embeddings Inference's body and answer; "details": true gives
predict's records), POST / (the Inference API's, for huggingface_hub.InferenceClient),
GET /health, /info, /metrics (Prometheus), / (a page to try texts), /docs.
The answers are load_finetuned(PATH).predict's. SIGTERM or Ctrl-C drains: requests in flight
are answered, new ones get 503, then the exit status is 0.
Needs FastAPI and uvicorn: pip install 'modernbert-tasks[serve]'. docs/deploying.md has more.
"""


def add_parser(sub: Any) -> None:
    from ..serving import SERVE_PRECISIONS

    p = sub.add_parser(
        "serve",
        help="serve a fine-tuned model over HTTP",
        description="Serve a fine-tuned model over HTTP, with dynamic batching.",
        epilog=SERVE_EPILOG,
    )
    p.add_argument(
        "path",
        metavar="RUN_OR_MODEL_FOLDER",
        help="the model folder saved by `train` (e.g. runs/sst2/model), or its run folder",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default: 127.0.0.1, this machine only)",
    )
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0: a free one)")
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=64,
        metavar="N",
        help="inputs from concurrent requests grouped into one model call (default: 64)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        metavar="MS",
        help="how long a request waits for others to batch with (default: 5)",
    )
    p.add_argument(
        "--batch-workers",
        type=int,
        default=1,
        metavar="N",
        help="groups of requests computed at once, each on its own thread with a share of "
        "the torch threads (default: 1; 2 can help under steady high load on a CPU)",
    )
    p.add_argument(
        "--warmup-length",
        type=int,
        default=128,
        metavar="TOKENS",
        help="before listening, predict one group of --max-batch-size texts of this many "
        "tokens, so memory grows less under load (default: 128; 0: no warm-up)",
    )
    p.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="require 'Authorization: Bearer <key>', the key read from environment "
        "variable NAME (default: no key)",
    )
    p.add_argument(
        "--precision",
        choices=SERVE_PRECISIONS,
        default="auto",
        help="auto: mixed on a GPU with fast bf16, fp32 on a CPU (bf16 grows the "
        "server's memory under load there); both give fp32's labels (default: auto)",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, ... (default: CUDA if available, else CPU)"
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        metavar="N",
        help="the most tokens read of a text (default: the model's position limit)",
    )
    add_long_text_arguments(p)
    p.add_argument(
        "--max-inputs", type=int, default=256, metavar="N", help="inputs in one request (default: 256)"
    )
    p.add_argument(
        "--max-chars", type=int, default=50_000, metavar="N", help="characters in one text (default: 50000)"
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=2 * 1024 * 1024,
        metavar="N",
        help="request body size (default: 2097152, 2 MiB)",
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: warning)",
    )


def run_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from pathlib import Path

    from ..serving import require_serve_deps, serve

    require_serve_deps()  # the one-line install hint before any model is loaded
    path = Path(args.path)
    if (path / "model").is_dir() and not (path / "config.json").is_file():
        path = path / "model"  # a run folder: its final model
    serve(
        path,
        host=args.host,
        port=args.port,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        api_key_env=args.api_key_env,
        precision=args.precision,
        device=args.device,
        max_length=args.max_length,
        long_text=args.long_text,
        stride=args.stride,
        aggregate=args.aggregate,
        max_inputs=args.max_inputs,
        max_chars=args.max_chars,
        max_body_bytes=args.max_body_bytes,
        batch_workers=args.batch_workers,
        warmup_length=args.warmup_length,
        log_level=args.log_level,
    )
    return EXIT_OK
