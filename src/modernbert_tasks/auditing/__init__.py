"""The label audit: find the training rows whose labels are likely wrong (`audit`).

The package is named `auditing` so that `modernbert_tasks.audit` is always the function.

`runner` trains k fold models with `fine_tune` and collects out-of-sample probabilities;
`issues` ranks the doubtful labels with cleanlab and draws the noise matrix. Train without the
flagged rows with fine_tune(exclude_rows=..., exclude_top=...) (training/exclusion.py).
"""

from .runner import AuditResult, audit

__all__ = ["audit", "AuditResult"]
