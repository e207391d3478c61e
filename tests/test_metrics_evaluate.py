"""A task may name any metric of the evaluate library ("evaluate:<hub id or path>"); here a
local metric folder, so the test needs no network."""

from __future__ import annotations

import textwrap

import pytest

from modernbert_tasks import ConfigError, Task, TaskDefinitionError, fine_tune, load_finetuned

ERROR_RATE = textwrap.dedent("""
    import datasets
    import evaluate


    class ErrorRate(evaluate.Metric):
        def _info(self):
            return evaluate.MetricInfo(
                description="share of wrong predictions", citation="", inputs_description="",
                features=datasets.Features({"predictions": datasets.Value("int64"),
                                            "references": datasets.Value("int64")}))

        def _compute(self, predictions, references):
            wrong = sum(p != r for p, r in zip(predictions, references))
            return {"error_rate": wrong / len(references)}
""")


@pytest.fixture(scope="module")
def error_rate(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("metrics") / "error_rate"
    folder.mkdir()
    (folder / "error_rate.py").write_text(ERROR_RATE)
    return f"evaluate:{folder}"


def test_an_evaluate_metric_is_computed_next_to_the_built_in_ones(
    error_rate, tiny_model_dir, sentiment_dir, tmp_path
):
    task = Task(
        name="sentiment-er",
        labels=("negative", "positive"),
        text_columns=("sentence",),
        metrics=("accuracy", error_rate),
        splits={"train": "train", "eval": "validation"},
    )
    result = fine_tune(
        task,
        model_name=tiny_model_dir,
        output_dir=tmp_path / "run",
        data_dir=sentiment_dir,
        learning_rate=1e-3,
        num_train_epochs=2,
        report_to="none",
        disable_tqdm=True,
    )
    assert result.metrics["accuracy"] >= 0.85
    assert result.metrics[error_rate] == pytest.approx(1 - result.metrics["accuracy"])
    scored = load_finetuned(result.model_path).evaluate(data_dir=sentiment_dir)
    assert scored[error_rate] == pytest.approx(1 - scored["accuracy"])


def test_an_evaluate_metric_that_cannot_load_fails_before_training(tiny_model_dir, sentiment_dir, tmp_path):
    task = Task(
        name="sentiment-bad",
        labels=("negative", "positive"),
        metrics=("accuracy", "evaluate:./no/such/metric"),
        splits={"train": "train", "eval": "validation"},
    )
    with pytest.raises(ConfigError, match=r"could not be loaded with evaluate\.load.*local metric"):
        fine_tune(
            task,
            model_name=tiny_model_dir,
            output_dir=tmp_path / "run",
            data_dir=sentiment_dir,
            report_to="none",
        )
    assert not (tmp_path / "run").exists()


def test_other_unknown_metric_names_are_refused_with_the_evaluate_form():
    with pytest.raises(TaskDefinitionError, match="'evaluate:<name or path>'"):
        Task(name="t", labels=("a", "b"), metrics=("acuracy",), main_metric="acuracy")
