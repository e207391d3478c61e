"""Hyperparameter search: `Trainer.hyperparameter_search` with Optuna, on the same run setup
as `fine_tune` (data, task, options, hardware).

Each trial trains a fresh model (`model_init`) in ``<output_dir>/run-<n>/``; its objective is the
task's main metric at the trial's *best* evaluation (the checkpoint `fine_tune` would keep),
not its last. Every finished trial is appended to ``<output_dir>/search.json``; the best
parameters are written to ``<output_dir>/best_params.json``, a file `fine_tune(**params)` and
``modernbert-tasks train --config best_params.json`` both take.

The default space (`DEFAULT_SPACE`) brackets the recipe: learning rate 1e-5..1e-4 (log), 1-4
epochs, warmup 0-10% of the steps, batch 8/16/32, weight decay 0-0.1. A space is a mapping
{option: spec}, where a spec is a list of choices, ``[low, high]`` (uniform; integers when
both are ints) or ``[low, high, "log"]``. With lora=True the default space's learning rate
is LoRA's, 1e-4..2e-3 (`LORA_SPACE`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..artifacts.manifest import json_ready
from ..errors import ConfigError
from ..options import DEFAULT_MODEL
from ..task import Task

if TYPE_CHECKING:
    from transformers.trainer_utils import BestRun

__all__ = ["search", "SearchResult", "DEFAULT_SPACE", "LORA_SPACE"]

logger = logging.getLogger(__name__)

DEFAULT_SPACE: dict[str, list] = {
    "learning_rate": [1e-5, 1e-4, "log"],
    "num_train_epochs": [1, 4],
    "warmup_steps": [0.0, 0.1],  # a float below 1 is a share of the steps (recipe: 0.06)
    "per_device_train_batch_size": [8, 16, 32],
    "weight_decay": [0.0, 0.1],
}
# lora=True: LoRA's learning rates run about ten times full fine-tuning's (docs/benchmarks.md)
LORA_SPACE: dict[str, list] = {**DEFAULT_SPACE, "learning_rate": [1e-4, 2e-3, "log"]}
INSTALL_HINT = "pip install 'modernbert-tasks[search]' (it adds optuna)"


@dataclass
class SearchResult:
    """The best trial's parameters and objective, and every trial (as in search.json)."""

    best_params: dict[str, Any]
    best_objective: float
    metric: str
    trials: list[dict[str, Any]]
    output_dir: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "best_params": self.best_params,
            "best_objective": self.best_objective,
            "trials": self.trials,
            "output_dir": str(self.output_dir),
        }


def _check_space(space: Mapping[str, Any]) -> dict[str, list]:
    from ..options import all_option_names

    known = set(all_option_names())
    checked = {}
    for name, spec in space.items():
        if name not in known:
            raise ConfigError(
                f"space names {name!r}, which is not an option; expected option "
                "names such as learning_rate or num_train_epochs."
            )
        spec = list(spec) if isinstance(spec, list | tuple) else spec
        ranged = (
            isinstance(spec, list)
            and len(spec) in (2, 3)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in spec[:2])
            and (len(spec) == 2 or spec[2] == "log")
        )
        if not isinstance(spec, list) or not spec or (len(spec) == 3 and spec[2] == "log" and not ranged):
            raise ConfigError(
                f"space[{name!r}]={spec!r}; expected a list of choices, [low, high] or [low, high, 'log']."
            )
        if ranged and spec[0] >= spec[1]:
            raise ConfigError(f"space[{name!r}]={spec!r}: low must be below high.")
        checked[name] = spec
    return checked


def _suggest(trial: Any, space: dict[str, list]) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        ranged = (
            len(spec) in (2, 3)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in spec[:2])
            and (len(spec) == 2 or spec[2] == "log")
        )
        if not ranged:
            params[name] = trial.suggest_categorical(name, spec)
        elif all(isinstance(v, int) for v in spec[:2]) and len(spec) == 2:
            params[name] = trial.suggest_int(name, spec[0], spec[1])
        else:
            params[name] = trial.suggest_float(name, spec[0], spec[1], log=len(spec) == 3)
    return params


def search(
    task: str | Task | None = None,
    model_name: str | os.PathLike = DEFAULT_MODEL,
    output_dir: str | os.PathLike | None = None,
    *,
    n_trials: int = 10,
    space: Mapping[str, Any] | None = None,
    **args: Any,
) -> SearchResult:
    """Search hyperparameters for `task` with Optuna (TPE, seeded by `seed`), `n_trials` runs.

    Takes `fine_tune`'s arguments (data, options); the options in `space` vary per trial. The
    task needs an evaluation split: the objective is its main metric.
    """
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"search needs optuna, which is not installed: {INSTALL_HINT}.") from None
    from .checkpoints import output_dir_for
    from .engine import prepare
    from .locking import run_lock
    from .lora import apply_lora

    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ConfigError(f"n_trials={n_trials!r}; expected an integer >= 1.")
    default = LORA_SPACE if args.get("lora") else DEFAULT_SPACE
    chosen = _check_space(default if space is None else space)
    fixed = sorted(set(chosen) & set(args))
    if fixed:
        raise ConfigError(
            f"{', '.join(fixed)} is both searched (space) and fixed (an argument); drop it from one of them."
        )
    from .task_source import resolve_task

    task, _, args = resolve_task(task, args)
    out = output_dir_for(task, output_dir)
    with run_lock(out):
        run = prepare(task, model_name, out, **args)
        trainer = run.trainer
        if trainer.eval_dataset is None:
            raise ConfigError(
                "search needs an evaluation split to score trials, and this data "
                "has none. Add one (validation_file=..., or validation_fraction > 0)."
            )
        main = run.task.main_metric
        greater = run.task.greater_is_better
        trials: list[dict[str, Any]] = []
        best_in_trial: list[float] = []
        current: dict[str, Any] = {}

        def finish_trial() -> None:
            if current:
                values = best_in_trial or [float("nan")]
                trials.append({**current, "objective": max(values) if greater else min(values)})
                (out / "search.json").write_text(
                    json.dumps(
                        json_ready(
                            {
                                "metric": main,
                                "direction": "maximize" if greater else "minimize",
                                "space": chosen,
                                "trials": trials,
                            }
                        ),
                        indent=2,
                        allow_nan=False,
                    ),
                    encoding="utf-8",
                )
            current.clear()
            best_in_trial.clear()

        def trial_space(trial: Any) -> dict[str, Any]:
            if current.get("trial") != trial.number:
                finish_trial()  # the previous trial is over: record it
            params = _suggest(trial, chosen)
            current.update(trial=trial.number, params=params)
            return params

        source = run.source
        assert source is not None  # prepare resolves the model source for every run

        def model_init(trial: Any = None):
            model = source.load_model(
                run.hardware.attention, attention_requested=run.options.attention != "auto"
            )
            return apply_lora(model, run.options)  # lora=True: each trial trains fresh adapters

        def objective(metrics: dict[str, float]) -> float:
            best_in_trial.append(metrics[f"eval_{main}"])
            return max(best_in_trial) if greater else min(best_in_trial)

        trainer.model_init = model_init
        # one objective, so one BestRun (a list only for multi-objective searches)
        best = cast(
            "BestRun",
            trainer.hyperparameter_search(
                hp_space=trial_space,
                compute_objective=objective,
                n_trials=n_trials,
                direction="maximize" if greater else "minimize",
                backend="optuna",
                sampler=optuna.samplers.TPESampler(seed=run.options.seed),
            ),
        )
        finish_trial()
        assert not isinstance(best.objective, list)  # one objective, one value
        (out / "best_params.json").write_text(
            json.dumps(json_ready(best.hyperparameters), indent=2, allow_nan=False), encoding="utf-8"
        )
    logger.info(
        "Best of %d trials: %s = %.4f with %s (saved to %s)",
        n_trials,
        main,
        best.objective,
        best.hyperparameters,
        out / "best_params.json",
    )
    return SearchResult(
        best_params=dict(best.hyperparameters),
        best_objective=best.objective,
        metric=main,
        trials=trials,
        output_dir=out,
    )
