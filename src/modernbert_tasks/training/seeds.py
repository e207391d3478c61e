"""`fine_tune(..., seeds=[1, 2, 3])`: one training per seed, summarised, the best one kept.

One fine-tuning run is one draw from a wide distribution (BERT-style fine-tuning on small
data varies by points from seed to seed; Dodge et al. 2020). Each seed trains with the
ordinary `fine_tune` in ``<output_dir>/seed-<n>``, so each is resumable like a single run;
``resume=True`` skips the seeds that already finished and continues the interrupted one.

Afterwards the mean, standard deviation (sample, n-1), min and max of every metric are
computed, the best seed -- by the task's main metric on the evaluation split -- is copied to
``<output_dir>/model`` (atomically) with a manifest that records every seed, and
``<output_dir>/seeds.json`` holds the summary.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..task import Task
    from .run import FineTuneResult

__all__ = ["fine_tune_seeds", "summarize", "SEEDS_FILE", "seed_dir"]

logger = logging.getLogger(__name__)

SEEDS_FILE = "seeds.json"
RESULT_FILE = "result.json"  # <output_dir>/seed-<n>/result.json: a finished seed's result


def seed_dir(output_dir: Path, seed: int) -> Path:
    return Path(output_dir) / f"seed-{seed}"


def fine_tune_seeds(
    train: Callable[..., FineTuneResult],
    task: str | Task | None,
    model_name: str | os.PathLike,
    output_dir: Path,
    **args: Any,
) -> FineTuneResult:
    """Run `train` (`fine_tune`, passed in: seeds sit under the engine, not beside it) once per
    seed in `args["seeds"]` and summarise (see module doc)."""
    from ..options import resolve_options
    from .arguments import is_main_process
    from .locking import run_lock
    from .run import MODEL_SUBDIR
    from .task_source import resolve_task

    seeds = args.pop("seeds")
    if "seed" in args:
        raise ConfigError(
            f"seed={args['seed']!r} and seeds={seeds!r} were both given; pass "
            "seeds=[...] alone (each run uses one of them as its seed)."
        )
    task_obj, _, args = resolve_task(task, args)
    opts = resolve_options(task_obj, {**args, "seeds": seeds}).options  # every check, up front
    if not isinstance(opts.resume, bool):  # one checkpoint path
        raise ConfigError(
            f"resume={os.fspath(opts.resume)!r} names one checkpoint, but seeds= "
            "trains several runs. Pass resume=True to continue every seed."
        )
    out = Path(output_dir)
    _check_earlier_runs(out, seeds, opts.resume, opts.overwrite, MODEL_SUBDIR)
    main = is_main_process()
    results: dict[int, FineTuneResult] = {}
    with run_lock(out, enabled=main):
        for seed in seeds:
            folder = seed_dir(out, seed)
            finished = _finished(folder, MODEL_SUBDIR) if opts.resume else None
            if finished is not None:
                logger.info("Seed %d already finished in %s: skipped.", seed, folder)
                results[seed] = finished
                continue
            logger.info(
                "Training seed %d of %s (%d/%d) in %s", seed, seeds, len(results) + 1, len(seeds), folder
            )
            result = train(task, model_name, folder, seed=seed, **args)
            if main:
                _write_json(folder / RESULT_FILE, result.to_dict())
            results[seed] = result
        summary = summarize(results, task_obj.main_metric, task_obj.greater_is_better)
        best = results[summary["best_seed"]]
        target = out / MODEL_SUBDIR
        if main:
            _promote(best.model_path, target, summary)
            _write_json(out / SEEDS_FILE, summary)
    logger.info(
        "Seed %d is the best by %s and was copied to %s", summary["best_seed"], summary["selected_by"], target
    )
    from .run import FineTuneResult

    return FineTuneResult(
        metrics=dict(best.metrics),
        model_path=target,
        best_checkpoint=best.best_checkpoint,
        log_history=best.log_history,
        output_dir=out,
        seeds=summary,
    )


# --- earlier runs and resuming -------------------------------------------------------------
def _check_earlier_runs(
    out: Path, seeds: list[int], resume: bool, overwrite: bool, model_subdir: str
) -> None:
    """Refuse before any training, rather than after the first seed, to clobber a run."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if resume or overwrite:
        return
    earlier = [f"{model_subdir}/"] if (out / model_subdir).is_dir() else []
    for seed in seeds:
        folder = seed_dir(out, seed)
        if (folder / model_subdir).is_dir() or any(folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*")):
            earlier.append(f"{folder.name}/")
    if earlier:
        raise ConfigError(
            f"output_dir {os.fspath(out)!r} holds an earlier run ({', '.join(earlier)}). Pass "
            "resume=True to continue it (finished seeds are kept; CLI: --resume), overwrite=True "
            "to start every seed over (CLI: --overwrite), or another output_dir."
        )


def _finished(folder: Path, model_subdir: str) -> FineTuneResult | None:
    """A seed's result when its run completed (model saved and result written), else None."""
    from .run import FineTuneResult

    path = folder / RESULT_FILE
    if not (path.is_file() and (folder / model_subdir).is_dir()):
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    best = data.get("best_checkpoint")
    return FineTuneResult(
        metrics=data["metrics"],
        model_path=Path(data["model_path"]),
        best_checkpoint=Path(best) if best else None,
        log_history=data.get("log_history", []),
        output_dir=Path(data["output_dir"]),
    )


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    from ..artifacts.manifest import json_ready

    tmp.write_text(json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --- summary --------------------------------------------------------------------------------
def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def summarize(
    results: dict[int, FineTuneResult], main_metric: str, greater_is_better: bool
) -> dict[str, Any]:
    """{"seeds", "best_seed", "selected_by", "greater_is_better", "summary": {metric: {mean,
    std, min, max}}, "per_seed": {seed: metrics}} over the metrics every seed reports."""
    per_seed = {seed: _numbers(r.metrics) for seed, r in results.items()}
    common = [k for k in next(iter(per_seed.values())) if all(k in m for m in per_seed.values())]
    summary = {}
    for key in common:
        values = [m[key] for m in per_seed.values()]
        summary[key] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
            "n": len(values),
        }
    if main_metric in common:
        pick = max if greater_is_better else min
        best = pick(per_seed, key=lambda s: per_seed[s][main_metric])  # ties: the first seed
        selected_by = f"{main_metric} on the evaluation split"
    else:
        best = next(iter(per_seed))
        selected_by = "none (no evaluation split): the first seed"
        logger.warning(
            "No evaluation split, so no seed can be called the best: seed %d (the "
            "first) is copied to the model folder.",
            best,
        )
    return {
        "seeds": list(per_seed),
        "best_seed": best,
        "selected_by": selected_by,
        "main_metric": main_metric,
        "greater_is_better": greater_is_better,
        "summary": summary,
        "per_seed": {str(s): m for s, m in per_seed.items()},
    }


def _promote(source: Path, target: Path, summary: dict[str, Any]) -> None:
    """Copy the best seed's model folder to `target` atomically, its manifest naming all seeds."""
    from ..artifacts.manifest import read_manifest, write_manifest
    from ..artifacts.saving import swap_into_place

    staged = target.with_name(f".{target.name}.partial")
    if staged.exists():
        shutil.rmtree(staged)
    shutil.copytree(source, staged)
    manifest = read_manifest(staged)
    if manifest is not None:
        manifest["seeds"] = summary
        write_manifest(staged, manifest)
    swap_into_place(staged, target)
