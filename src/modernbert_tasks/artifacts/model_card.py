"""The model card: a Hugging Face `README.md` generated from the manifest alone.

Everything in the card comes from `modernbert_tasks.json`, so the two never disagree: YAML
metadata (library_name, tags, pipeline_tag, base_model, datasets, metrics, model-index), the
labels, the training setup, the results (mean ± std over seeds when the manifest has a
`seeds` summary), the data, intended use and limits, and how to load the model.

The metadata and its model-index are built by huggingface_hub (`ModelCardData`, `EvalResult`),
as the Hub reads them.

`manifest["seeds"]`, when present, is read as
``{"seeds": [42, 43, ...], "metrics": {name: {"mean": m, "std": s, ...}}}``; per-metric entries
may also sit at the top level. Anything else there is ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huggingface_hub import ModelCardData

__all__ = ["CARD_NAME", "render_model_card", "write_model_card", "card_metrics"]

CARD_NAME = "README.md"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
# Training settings worth a row in the card, in this order (when recorded).
_SETUP = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_steps",
    "warmup_ratio",
    "lr_scheduler_type",
    "seed",
    "precision",
    "attention",
    "padding",
    "world_size",
    "global_step",
)
_RUN_STATS = ("runtime", "samples_per_second", "steps_per_second")


# --- the numbers ---------------------------------------------------------------------------
def card_metrics(manifest: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{split: {metric: value}} for 'eval' and 'test': the task's metrics and the loss.

    The manifest stores the eval split's metrics unprefixed and the test split's as
    'test_<name>'; timing entries (runtime, samples per second) are left out.
    """
    metrics = manifest.get("metrics") or {}
    names = list(manifest["task"]["definition"]["metrics"]) + ["loss"]
    out: dict[str, dict[str, float]] = {"eval": {}, "test": {}}
    for name in names:
        for split, key in (("eval", name), ("test", f"test_{name}")):
            value = metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[split][name] = value
    return {split: values for split, values in out.items() if values}


def _seed_stats(manifest: Mapping[str, Any]) -> tuple[list[Any], dict[str, dict[str, float]]]:
    seeds = manifest.get("seeds")
    if not isinstance(seeds, Mapping):
        return [], {}
    metrics = seeds.get("metrics")
    per_metric = metrics if isinstance(metrics, Mapping) else seeds
    stats = {}
    for name, value in per_metric.items():
        if isinstance(value, Mapping) and all(isinstance(value.get(k), int | float) for k in ("mean", "std")):
            stats[str(name)] = {"mean": float(value["mean"]), "std": float(value["std"])}
    runs = seeds.get("seeds")
    return runs if isinstance(runs, list) else [], stats


def _metadata(manifest: Mapping[str, Any], name: str) -> ModelCardData:
    """The card's YAML metadata, model-index included, as huggingface_hub builds it."""
    from huggingface_hub import EvalResult, ModelCardData

    definition = manifest["task"]["definition"]
    hub_id = definition.get("hub_id")
    runs, seed_stats = _seed_stats(manifest)
    results = []
    for split, values in card_metrics(manifest).items():
        dataset = {
            "dataset_type": hub_id or manifest["task"]["name"],
            "dataset_name": hub_id or manifest["task"]["name"],
            "dataset_config": definition.get("hub_config") or None,
            "dataset_split": (definition.get("splits") or {}).get(split) or split,
        }
        for metric, value in values.items():
            if metric == "loss":
                continue
            results.append(
                EvalResult(
                    task_type="text-classification",
                    task_name="Text Classification",
                    metric_type=metric,
                    metric_value=value,
                    metric_name=f"{split} {metric}",
                    **dataset,
                )
            )
            stats = seed_stats.get(metric if split == "eval" else f"test_{metric}")
            if stats:  # the mean over seeds as its own entry: the model's own value stays exact
                results.append(
                    EvalResult(
                        task_type="text-classification",
                        task_name="Text Classification",
                        metric_type=metric,
                        metric_value=stats["mean"],
                        metric_name=f"{split} {metric} (mean of {len(runs) or 'several'} seeds, "
                        f"std {_fmt(stats['std'])})",
                        **dataset,
                    )
                )
    base_model = str(manifest["base_model"])
    return ModelCardData(
        library_name="transformers",
        tags=["modernbert-tasks", "text-classification", str(manifest["task"]["name"])],
        pipeline_tag="text-classification",
        base_model=base_model if _HUB_ID.match(base_model) else None,
        datasets=[hub_id] if hub_id else None,
        metrics=list(definition["metrics"]),
        model_name=name if results else None,
        eval_results=results or None,
    )


# --- the card ------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        if value.is_integer():
            return str(int(value))
        return f"{value:.4g}" if abs(value) < 1e-3 else f"{value:.4f}".rstrip("0").rstrip(".")
    return f"`{json.dumps(value)}`" if isinstance(value, list | dict) else str(value)


def render_model_card(manifest: Mapping[str, Any], name: str | None = None) -> str:
    """The README.md text for a model folder with this manifest (local paths as names only)."""
    from .manifest import shareable_manifest

    manifest = shareable_manifest(manifest)
    task = manifest["task"]
    definition = task["definition"]
    training = manifest.get("training") or {}
    name = name or f"{Path(str(manifest['base_model'])).name}-{task['name']}"
    labels = list(definition["labels"])
    problem = definition["problem_type"]
    metrics = card_metrics(manifest)
    runs, seed_stats = _seed_stats(manifest)
    hub_id = definition.get("hub_id")
    columns = list(definition["text_columns"])
    predict_length = (manifest.get("prediction") or {}).get("max_length") or "the model's limit"
    out = ["---", _metadata(manifest, name).to_yaml(), "---", "", f"# {name}", ""]
    out += [
        f"`{manifest['base_model']}` fine-tuned with "
        f"[modernbert-tasks](https://pypi.org/project/modernbert-tasks/) on the task "
        f"**{task['name']}** (version {task['version']}"
        + (f", from plugin `{task['plugin']}`" if task.get("plugin") else "")
        + ")."
        + (f" {definition['description']}" if definition.get("description") else ""),
        "",
    ]
    out += ["## Labels", ""]
    if problem == "regression":
        out += ["Regression: one output, a score.", ""]
    else:
        kind = (
            "multi-label (every label with probability > 0.5 applies)"
            if problem == "multi_label_classification"
            else "single-label"
        )
        out += [
            f"{kind.capitalize()} classification over {len(labels)} labels:",
            "",
            "| id | label |",
            "|---|---|",
        ]
        out += [f"| {i} | {label} |" for i, label in enumerate(labels)] + [""]
    out += ["## Results", ""]
    if metrics:
        if runs or seed_stats:
            out += [
                f"Mean ± std over {len(runs) or 'several'} seeds"
                + (f" ({', '.join(map(str, runs))})" if runs else "")
                + "; single-run values are this model's.",
                "",
            ]
        out += ["| split | metric | value |", "|---|---|---|"]
        for split, values in metrics.items():
            for metric, value in values.items():
                stats = seed_stats.get(metric if split == "eval" else f"test_{metric}")
                shown = (
                    f"{_fmt(stats['mean'])} ± {_fmt(stats['std'])} (this model: {_fmt(value)})"
                    if stats
                    else _fmt(value)
                )
                split_name = (definition.get("splits") or {}).get(split) or split
                out.append(f"| {split} ({split_name}) | {metric} | {shown} |")
        out.append("")
    else:
        out += ["No evaluation metrics were recorded.", ""]
    out += ["## Training data", ""]
    if hub_id:
        out.append(
            f"Dataset: [`{hub_id}`](https://huggingface.co/datasets/{hub_id})"
            + (f", configuration `{definition['hub_config']}`" if definition.get("hub_config") else "")
            + (f", revision `{definition['hub_revision']}`" if definition.get("hub_revision") else "")
            + "."
        )
    for key in ("data_dir", "train_file", "data_files", "dataset"):
        if training.get(key):
            out.append(f"Read from {key.replace('_', ' ')} `{training[key]}`.")
    counts = training.get("num_examples")
    if isinstance(counts, Mapping) and counts:
        out.append("Examples: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
    out += [
        f"Input column(s): {', '.join(f'`{c}`' for c in columns)}; label column "
        f"`{definition['label_column']}`.",
        "",
    ]
    out += [
        "## Training setup",
        "",
        "| setting | value |",
        "|---|---|",
        f"| base model | `{manifest['base_model']}` |",
        f"| max length (tokens) | {manifest['max_length']} in training, {predict_length} at prediction |",
    ]
    if manifest.get("text_prefix"):
        out.append(f"| text prefix | `{json.dumps(manifest['text_prefix'])}` |")
    out += [
        f"| {key.replace('_', ' ')} | {_fmt(training[key])} |"
        for key in _SETUP
        if training.get(key) is not None
    ]
    lora = manifest.get("lora")
    if isinstance(lora, Mapping):
        targets = lora.get("target_modules")
        out.append(
            f"| LoRA | rank {lora.get('r')}, alpha {_fmt(lora.get('alpha'))}, dropout "
            f"{_fmt(lora.get('dropout'))} on "
            + (", ".join(f"`{t}`" for t in targets) if isinstance(targets, list) else f"`{targets}`")
            + f"; head trained in full; {float(lora.get('trainable_percent') or 0):.2f}% of the parameters "
            "trained; merged into these weights |"
        )
    versions = manifest.get("versions") or {}
    out += [
        "",
        "Library versions: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        + f". Created {manifest.get('created_at', 'unknown')}.",
        "",
    ]
    out += [
        "## Intended use and limits",
        "",
        f"- Intended for the task it was trained on: "
        f"{(definition.get('description') or task['name']).rstrip('.')}. Inputs are "
        f"{' + '.join(columns)} text"
        + (" pairs" if len(columns) == 2 else "")
        + f", read up to {predict_length} tokens "
        "at prediction (training read "
        f"{manifest['max_length']}): anything beyond is not "
        "seen, and `modernbert-tasks predict` marks such a text `truncated`.",
        "- It only knows the labels above; inputs from another domain, language or label "
        "scheme get a confident-looking answer that may be wrong. Check it on your data "
        "first (`load_finetuned(path).evaluate(your_file)`).",
        "- It inherits the biases of the base model and of the training data. Do not use it "
        "alone for decisions about people.",
        "",
    ]
    example = '("first text", "second text")' if len(columns) == 2 else '"a text to classify"'
    out += [
        "## How to use",
        "",
        "With `transformers`:",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'classifier = pipeline("text-classification", model="path/or/hub-id")',
    ]
    if manifest.get("text_prefix"):
        out.append(
            f"# training put {json.dumps(manifest['text_prefix'])} before every text: do the same here"
        )
    if len(columns) == 2:
        out.append('print(classifier({"text": "first text", "text_pair": "second text"}))')
    else:
        out.append(f"print(classifier({example}))")
    out += [
        "```",
        "",
        "With `modernbert-tasks` (same tokenization, prefix and max length as "
        'training; `backend="onnx"` after `modernbert-tasks export PATH --format onnx`):',
        "",
        "```python",
        "from modernbert_tasks import load_finetuned",
        "",
        'model = load_finetuned("path/or/hub-id")',
        f"print(model.predict([{example}]))",
        "```",
        "",
    ]
    return "\n".join(out)


def write_model_card(folder: str | Path, manifest: Mapping[str, Any], name: str | None = None) -> Path:
    """Write `folder/README.md` from the manifest; return its path."""
    path = Path(folder) / CARD_NAME
    path.write_text(render_model_card(manifest, name), encoding="utf-8")
    return path
