"""uvicorn's Server, with a drain on the first SIGTERM or Ctrl-C, and a call once it listens."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from .gate import ServerState

__all__ = ["DrainingServer"]


class DrainingServer(uvicorn.Server):
    """The first SIGTERM/SIGINT drains: the gate answers new requests with 503 while the ones
    in flight finish, then the server stops and `run` returns (exit status 0). A second signal
    stops at once, as plain uvicorn does. `on_ready()` runs once the port listens (after the
    app's startup: the warm-up)."""

    def __init__(
        self, config: uvicorn.Config, state: ServerState, on_ready: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self.drain_state = state
        self.on_ready = on_ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit and self.on_ready is not None:
            self.on_ready()

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.drain_state.draining:
            super().handle_exit(sig, frame)
            return
        # not recorded in uvicorn's captured signals: it would re-raise the signal at exit
        self.drain_state.draining = True
        print(
            f"Draining: answering the {self.drain_state.in_flight} request(s) in flight, "
            "refusing new ones with 503.",
            file=sys.stderr,
            flush=True,
        )

    async def on_tick(self, counter: int) -> bool:
        # uvicorn's main loop asks every 0.1 s whether to stop
        if self.drain_state.draining and self.drain_state.in_flight == 0:
            return True
        return await super().on_tick(counter)
