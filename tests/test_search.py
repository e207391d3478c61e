"""Hyperparameter search (training/search.py): Optuna through Trainer.hyperparameter_search."""

from __future__ import annotations

import json

import pytest

from modernbert_tasks import ConfigError, fine_tune, search

pytest.importorskip("optuna", reason="the search extra: pip install 'modernbert-tasks[search]'")

SPACE = {"learning_rate": [1e-4, 3e-3, "log"], "num_train_epochs": [1, 2]}


@pytest.fixture(scope="module")
def searched(tiny_model_dir, sentiment_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "run"
    result = search(
        "sst2",
        model_name=tiny_model_dir,
        output_dir=out,
        data_dir=sentiment_dir,
        n_trials=3,
        space=SPACE,
        report_to="none",
        disable_tqdm=True,
    )
    return result, out


def test_every_trial_is_recorded_and_the_best_is_chosen(searched):
    result, out = searched
    recorded = json.loads((out / "search.json").read_text())
    assert recorded["metric"] == "accuracy" and recorded["direction"] == "maximize"
    assert [t["trial"] for t in recorded["trials"]] == [0, 1, 2]
    for trial in recorded["trials"]:
        assert set(trial["params"]) == set(SPACE)
        assert 1e-4 <= trial["params"]["learning_rate"] <= 3e-3
        assert trial["params"]["num_train_epochs"] in (1, 2)
        assert 0.0 <= trial["objective"] <= 1.0
    best = max(recorded["trials"], key=lambda t: t["objective"])
    assert result.best_objective == best["objective"] and result.best_params == best["params"]
    assert result.best_objective >= 0.8  # the best trial learned (chance is 0.5)


def test_best_params_file_trains_again_with_fine_tune(searched, tiny_model_dir, sentiment_dir, tmp_path):
    result, out = searched
    params = json.loads((out / "best_params.json").read_text())
    assert params == result.best_params
    again = fine_tune(
        "sst2",
        model_name=tiny_model_dir,
        output_dir=tmp_path / "again",
        data_dir=sentiment_dir,
        report_to="none",
        disable_tqdm=True,
        **params,
    )
    assert again.metrics["accuracy"] == pytest.approx(result.best_objective, abs=0.05)


def test_bad_spaces_are_refused_before_training(tiny_model_dir, sentiment_dir, tmp_path):
    with pytest.raises(ConfigError, match="space names 'learnin_rate'"):
        search(
            "sst2",
            model_name=tiny_model_dir,
            output_dir=tmp_path / "a",
            data_dir=sentiment_dir,
            space={"learnin_rate": [1e-5, 1e-4]},
        )
    with pytest.raises(ConfigError, match="both searched .* and fixed"):
        search(
            "sst2",
            model_name=tiny_model_dir,
            output_dir=tmp_path / "b",
            data_dir=sentiment_dir,
            learning_rate=1e-4,
        )
    with pytest.raises(ConfigError, match=r"low must be below high"):
        search(
            "sst2",
            model_name=tiny_model_dir,
            output_dir=tmp_path / "c",
            data_dir=sentiment_dir,
            space={"learning_rate": [1e-3, 1e-5, "log"]},
        )
    assert not any((tmp_path / n).exists() for n in "abc")


def test_search_command_prints_the_trials_and_the_config_line(tiny_model_dir, sentiment_dir, tmp_path):
    from modernbert_tasks.testing import run_cli

    space = tmp_path / "space.json"
    space.write_text(json.dumps({"learning_rate": [5e-4, 2e-3, "log"]}))
    proc = run_cli(
        "search",
        "sst2",
        "--model",
        tiny_model_dir,
        "--data-dir",
        sentiment_dir,
        "--output-dir",
        tmp_path / "run",
        "--n-trials",
        "2",
        "--space",
        space,
        "--num-train-epochs",
        "1",
        "--report-to",
        "none",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = tmp_path / "run" / "best_params.json"
    assert f"--config {best}" in proc.stdout and "Best: accuracy" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line[:1].isdigit()]
    assert len(lines) == 2  # one row per trial
    assert set(json.loads(best.read_text())) == {"learning_rate"}
