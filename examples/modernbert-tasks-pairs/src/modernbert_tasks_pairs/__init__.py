"""modernbert-tasks-pairs: sentence-pair tasks for modernbert-tasks, with their data.

>>> from modernbert_tasks import fine_tune
>>> fine_tune("pairs-paraphrase")          # doctest: +SKIP
"""

from __future__ import annotations

from .tasks import DATA_DIR, NLI, PARAPHRASE, STS, TASKS, PackagedTask

__version__ = "1.0.0"

__all__ = ["DATA_DIR", "PackagedTask", "PARAPHRASE", "NLI", "STS", "TASKS", "__version__"]
