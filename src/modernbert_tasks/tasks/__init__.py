"""Built-in tasks, registered through this package's own ``modernbert_tasks`` entry point."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .sst2 import SST2


@hookimpl
def register_tasks(register):
    register(SST2)
