"""The example plugin's own tests, as a plugin author writes them: no conftest, only the
fixtures and helpers modernbert-tasks ships in `modernbert_tasks.testing` (a pytest plugin).

Run with the plugin installed: `pip install -e ./examples/modernbert-tasks-pairs`, then
`python -m pytest examples/modernbert-tasks-pairs/tests`.
"""

from __future__ import annotations

import pytest

import modernbert_tasks
from modernbert_tasks.testing import build_tiny_modernbert

pytest.importorskip(
    "modernbert_tasks_pairs",
    reason="install the example plugin first: pip install --no-deps ./examples/modernbert-tasks-pairs",
)


def test_the_tasks_are_registered():
    rows = {r["name"]: r for r in modernbert_tasks.list_tasks()}
    assert {"pairs-paraphrase", "pairs-nli", "pairs-sts"} <= rows.keys()
    assert rows["pairs-paraphrase"]["plugin"] == "pairs"


def test_the_tiny_model_fixture_predicts_pairs(tiny_model_dir, tmp_path):
    """The shared session fixture trains on a pair task (one step) and predicts pairs."""
    result = modernbert_tasks.fine_tune(
        "pairs-paraphrase",
        model_name=tiny_model_dir,
        output_dir=tmp_path / "run",
        max_steps=1,
        report_to="none",
        disable_tqdm=True,
    )
    model = modernbert_tasks.load_finetuned(result.model_path)
    (out,) = model.predict([("a man is playing a guitar .", "a man plays the guitar .")])
    assert out["label"] in model.labels


def test_nli_is_learned(tmp_path):
    task = modernbert_tasks.get_task("pairs-nli")
    train = task.load_dataset()["train"]
    # a tokenizer trained on the task's own words: the tiny model then learns in seconds
    model_dir = build_tiny_modernbert(
        tmp_path / "tiny", num_labels=3, texts=list(train["premise"]) + list(train["hypothesis"])
    )
    result = modernbert_tasks.fine_tune(
        "pairs-nli",
        model_name=model_dir,
        output_dir=tmp_path / "run",
        learning_rate=1e-3,
        num_train_epochs=3,
        eval_strategy="epoch",
        report_to="none",
        seed=0,
        max_length=48,
        precision="fp32",
        disable_tqdm=True,
    )
    # chance is 1/3; the hypotheses' wording gives the label away to a model that learned it
    assert result.metrics["macro_f1"] > 0.7, result.metrics
