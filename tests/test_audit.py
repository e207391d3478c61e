"""The label audit: planted flips found out of sample, resumable folds, exclusion when training,
and the inputs it refuses."""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from modernbert_tasks import ConfigError, DataError, audit, fine_tune
from modernbert_tasks.auditing.issues import find_issues
from modernbert_tasks.testing import make_sentiment_rows, run_cli, write_tsv

FAST = {
    "learning_rate": 1e-3,
    "num_train_epochs": 6,
    "disable_tqdm": True,
    "report_to": "none",
    "warmup_steps": 0,
    "max_length": 32,
    "precision": "fp32",
    "seed": 3,
}
ROWS, FLIPS, FOLDS = 300, 15, 3


def write_reviews(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment"])
        writer.writerows(rows)
    return path


def reviews(n: int, seed: int) -> list[tuple[str, str]]:
    return [(text, "pos" if label else "neg") for text, label in make_sentiment_rows(n, seed)]


@pytest.fixture(scope="module")
def audited(tiny_model_dir, tmp_path_factory):
    """An audit of 300 easy reviews, 15 of them with a flipped label (trained once)."""
    folder = tmp_path_factory.mktemp("audit")
    rows = reviews(ROWS, seed=11)
    flipped = sorted(random.Random(0).sample(range(ROWS), FLIPS))
    noisy = [
        (t, {"pos": "neg", "neg": "pos"}[y]) if i in flipped else (t, y) for i, (t, y) in enumerate(rows)
    ]
    train = write_reviews(folder / "reviews.csv", noisy)
    result = audit(
        train_file=train,
        model_name=tiny_model_dir,
        output_dir=folder / "audit",
        folds=FOLDS,
        write_cleaned=True,
        data_map=True,
        data_map_points=2,
        **FAST,
    )
    return {"folder": folder, "train": train, "rows": rows, "flipped": flipped, "result": result}


def resume_audit(audited, tiny_model_dir, output_dir, **extra):
    """Resume the shared fixture's audit (same file, folds and data map) in `output_dir`."""
    options = {"folds": FOLDS, "data_map": True, "data_map_points": 2, **FAST, **extra}
    return audit(
        train_file=audited["train"], model_name=tiny_model_dir, output_dir=output_dir, resume=True, **options
    )


def test_planted_flips_are_found_out_of_sample(audited):
    result, flipped, rows = audited["result"], audited["flipped"], audited["rows"]
    # the fold models learned: their out-of-sample predictions match the true labels
    truth = np.array([result.labels.index(y) for _, y in rows])
    accuracy = float((result.held_out.argmax(axis=1) == truth).mean())
    assert accuracy >= 0.9, accuracy
    flagged = set(result.flagged)
    recall = len(flagged & set(flipped)) / len(flipped)
    precision = len(flagged & set(flipped)) / max(1, len(flagged))
    assert recall >= 0.8, (recall, sorted(flagged), flipped)
    assert precision >= 0.5, (precision, sorted(flagged), flipped)
    assert result.folds_run == FOLDS and result.rows == ROWS


def test_audit_files(audited):
    result, flipped = audited["result"], audited["flipped"]
    out = result.output_dir
    with open(out / "label_issues.csv", encoding="utf-8") as fh:
        issues = list(csv.DictReader(fh))
    assert list(issues[0]) == [
        "row",
        "text",
        "given_label",
        "suggested_label",
        "given_label_probability",
        "quality",
    ]
    # worst first, and each row points at its row of the user's file
    probs = [float(i["given_label_probability"]) for i in issues]
    assert probs == sorted(probs)
    source = list(csv.DictReader(open(audited["train"], encoding="utf-8")))
    for issue in issues:
        row = int(issue["row"])
        assert issue["text"] == source[row]["review"]
        assert issue["given_label"] == source[row]["sentiment"]
        if row in flipped:
            assert issue["suggested_label"] == audited["rows"][row][1]  # the true label
    summary = json.loads((out / "audit.json").read_text())
    assert summary["rows"] == ROWS and summary["folds"] == FOLDS
    assert summary["flagged"] == len(issues)
    assert set(summary["noise_rate"]) == {"neg", "pos"}
    assert 0 < sum(summary["noise_rate"].values()) < 0.5
    joint = np.array(summary["confident_joint"])
    assert joint.shape == (2, 2) and joint.sum() == ROWS
    assert (out / "noise_matrix.png").stat().st_size > 1000
    # the cleaned copy: the same CSV without the flagged rows
    cleaned = list(csv.DictReader(open(result.cleaned_file, encoding="utf-8")))
    assert len(cleaned) == ROWS - len(issues)
    kept = [r for i, r in enumerate(source) if i not in set(result.flagged)]
    assert cleaned == kept


def test_data_map_gives_flips_low_confidence_and_aum(audited):
    result, flipped = audited["result"], audited["flipped"]
    out = result.output_dir
    with open(out / "data_map.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == [
        "row",
        "given_label",
        "confidence",
        "variability",
        "aum",
        "correctness",
        "points",
    ]
    source = list(csv.DictReader(open(audited["train"], encoding="utf-8")))
    assert [int(r["row"]) for r in table] == list(range(ROWS))  # one line per training row
    assert [r["given_label"] for r in table] == [r["sentiment"] for r in source]
    # every row trained in k-1 folds, each recording 2 points per epoch (6 epochs)
    steps = []
    for k in range(1, FOLDS + 1):
        saved = json.loads((out / f"fold-{k}" / "training_dynamics.json").read_text())
        held_out = json.loads((out / f"fold-{k}" / "held_out_predictions.json").read_text())["rows"]
        assert sorted(saved["rows"] + held_out) == list(range(ROWS))
        steps.append([p["step"] for p in saved["points"]])
        assert steps[-1] == sorted(set(steps[-1])) and len(steps[-1]) in (12, 13)
    assert {int(r["points"]) for r in table} <= {sum(map(len, steps)) - len(s) for s in steps}
    confidence = np.array([float(r["confidence"]) for r in table])
    aum = np.array([float(r["aum"]) for r in table])
    variability = np.array([float(r["variability"]) for r in table])
    np.testing.assert_allclose(confidence, result.data_map.confidence, atol=1e-4)
    assert ((0 <= confidence) & (confidence <= 1)).all() and (variability >= 0).all()
    # the models learn the clean rows and fight the flipped ones: the flips sit at the bottom
    clean = np.setdiff1d(np.arange(ROWS), flipped)
    assert confidence[flipped].mean() < 0.5 < confidence[clean].mean()
    assert aum[flipped].mean() < 0 < aum[clean].mean()
    lowest = set(np.argsort(aum)[:FLIPS].tolist())
    assert len(lowest & set(flipped)) >= 0.8 * FLIPS, (sorted(lowest), flipped)
    summary = json.loads((out / "audit.json").read_text())
    assert summary["data_map"]["file"] == "data_map.csv"
    assert summary["data_map"]["points"] == sum(int(r["points"]) for r in table)


def test_data_map_resumes_and_refuses_folds_without_it(audited, tiny_model_dir, tmp_path):
    import shutil

    copy = tmp_path / "audit"
    shutil.copytree(audited["result"].output_dir, copy)
    fold = copy / "fold-2"
    # fold 2 "was interrupted" at its first checkpoint: its later checkpoints and model are gone
    checkpoints = sorted(fold.glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]))
    assert len(checkpoints) >= 2
    for later in checkpoints[1:]:
        shutil.rmtree(later)
    shutil.rmtree(fold / "model")
    (fold / "held_out_predictions.json").unlink()
    resumed_at = int(checkpoints[0].name.split("-")[1])
    dynamics = fold / "training_dynamics.json"
    before = json.loads(dynamics.read_text())
    kept = [p for p in before["points"] if p["step"] <= resumed_at]
    assert kept and len(kept) < len(before["points"])
    kept[0]["p_given"] = [0.123] * len(before["rows"])  # a mark: kept points are not recorded again
    shutil.copy(dynamics, tmp_path / "saved.json")
    dynamics.write_text(json.dumps(before))
    again = resume_audit(audited, tiny_model_dir, copy)
    assert again.folds_run == 1
    after = json.loads(dynamics.read_text())
    assert [p["step"] for p in after["points"]] == [p["step"] for p in before["points"]]
    assert after["points"][0]["p_given"] == [0.123] * len(before["rows"])
    original = json.loads((tmp_path / "saved.json").read_text())["points"]
    for new, old in zip(after["points"][len(kept) :], original[len(kept) :], strict=True):
        assert new["step"] == old["step"] > resumed_at  # recorded again after the checkpoint
        np.testing.assert_allclose(new["p_given"], old["p_given"], atol=0.05)
    assert len(again.data_map.confidence) == ROWS
    # a fold trained without the data map cannot give one: refused before any training, also
    # when its model was saved and its predictions were not (an interrupt between the two)
    (copy / "fold-3" / "held_out_predictions.json").unlink()
    (copy / "fold-3" / "training_dynamics.json").unlink()
    with pytest.raises(ConfigError, match=r"data_map=True, but fold-3 .* was trained without it"):
        resume_audit(audited, tiny_model_dir, copy, data_map_points=4)
    (copy / "fold-1" / "training_dynamics.json").unlink()
    with pytest.raises(ConfigError, match=r"data_map=True, but fold-1 .* was trained without it"):
        resume_audit(audited, tiny_model_dir, copy, data_map_points=4)
    with pytest.raises(ConfigError, match=r"data_map_points=0 must be an integer >= 1"):
        audit(train_file=audited["train"], output_dir=copy, data_map=True, data_map_points=0, **FAST)
    with pytest.raises(ConfigError, match=r"data_map_points=2 sets .* data_map is off"):
        audit(train_file=audited["train"], output_dir=copy, data_map_points=2, **FAST)
    with pytest.raises(ConfigError, match=r"data_map='yes' must be True or False"):
        audit(train_file=audited["train"], output_dir=copy, data_map="yes", **FAST)


def test_fold_ensemble_averages_held_out_and_in_sample(audited, tiny_model_dir, tmp_path):
    result = audited["result"]
    assert result.probabilities_from == "held_out" and result.in_sample is None  # the default
    np.testing.assert_allclose(result.probabilities, result.held_out)
    summary = json.loads((result.output_dir / "audit.json").read_text())
    assert summary["method"]["probabilities"] == "held_out"
    # the same folds with probabilities="fold_ensemble": fold 1 and 3 predict their training
    # rows with their saved models (no training); fold 2, without its predictions, predicts
    # both its held-out and its training rows
    import shutil

    copy = tmp_path / "audit"
    shutil.copytree(result.output_dir, copy)
    (copy / "fold-2" / "held_out_predictions.json").unlink()
    ensemble = audit(
        train_file=audited["train"],
        model_name=tiny_model_dir,
        output_dir=copy,
        folds=FOLDS,
        resume=True,
        probabilities="fold_ensemble",
        **FAST,
    )
    assert ensemble.folds_run == 1 and ensemble.probabilities_from == "fold_ensemble"
    trained, seen = np.zeros((ROWS, 2)), np.zeros(ROWS, dtype=int)
    for k in range(1, FOLDS + 1):
        saved = json.loads((copy / f"fold-{k}" / "held_out_predictions.json").read_text())
        assert sorted(saved["rows"] + saved["in_sample_rows"]) == list(range(ROWS))
        trained[saved["in_sample_rows"]] += saved["in_sample_probabilities"]
        seen[saved["in_sample_rows"]] += 1
    assert (seen == FOLDS - 1).all()  # every row is in the training of the k-1 other folds
    np.testing.assert_allclose(ensemble.held_out, result.held_out, atol=1e-5)
    np.testing.assert_allclose(ensemble.in_sample, trained / (FOLDS - 1))
    np.testing.assert_allclose(ensemble.probabilities, (ensemble.held_out + ensemble.in_sample) / 2)
    # the models that trained on a row agree with its given label (flips included) more than
    # the model that never saw it, so cleanlab estimates less noise and flags no more rows
    rows, given = np.arange(ROWS), np.array(result.given)
    assert ensemble.in_sample[rows, given].mean() > ensemble.held_out[rows, given].mean()
    assert 0 < len(ensemble.flagged) <= len(result.flagged)
    assert set(ensemble.flagged) <= set(np.flatnonzero(ensemble.probabilities.argmax(1) != given))
    summary = json.loads((copy / "audit.json").read_text())
    assert summary["method"]["probabilities"] == "fold_ensemble"
    with pytest.raises(ConfigError, match=r"probabilities='both' is not one of held_out, fold_ensemble"):
        audit(train_file=audited["train"], output_dir=copy, probabilities="both", **FAST)


def test_repeats_add_rounds_and_average_their_held_out_predictions(audited, tiny_model_dir, tmp_path, caplog):
    import shutil

    from modernbert_tasks.cli.audit import format_audit

    result = audited["result"]
    copy = tmp_path / "audit"
    shutil.copytree(result.output_dir, copy)
    # resume=True with repeats=2 keeps the first round (the fixture's folds) and trains a second
    caplog.set_level("INFO", logger="modernbert_tasks")
    again = resume_audit(audited, tiny_model_dir, copy, repeats=2)
    assert again.folds_run == FOLDS and again.repeats == 2
    # the new round's folds start fresh, without resume's "no checkpoint" warning
    assert "round 2/2: training on" in caplog.text and "has no checkpoint" not in caplog.text
    rounds = []
    for name in ("fold-{k}", "fold-{k}-round-2"):
        probs, held = np.zeros((ROWS, 2)), []
        for k in range(1, FOLDS + 1):
            saved = json.loads((copy / name.format(k=k) / "held_out_predictions.json").read_text())
            probs[saved["rows"]] = saved["probabilities"]
            held.append(set(saved["rows"]))
        assert sorted(r for rows in held for r in rows) == list(range(ROWS))  # each row held out once
        rounds.append((probs, held))
    # the second round splits with seed + 1: other folds, other models
    assert rounds[0][1] != rounds[1][1]
    assert not np.allclose(rounds[0][0], rounds[1][0], atol=1e-3)
    np.testing.assert_allclose(rounds[0][0], result.held_out, atol=1e-6)
    np.testing.assert_allclose(again.held_out, (rounds[0][0] + rounds[1][0]) / 2, atol=1e-6)
    recall = len(set(again.flagged) & set(audited["flipped"])) / FLIPS
    assert recall >= 0.8, (recall, sorted(again.flagged))
    # the data map pools every fold that trained on a row: k-1 per round
    assert (again.data_map.folds == 2 * (FOLDS - 1)).all()
    summary = json.loads((copy / "audit.json").read_text())
    assert summary["repeats"] == 2 and summary["folds"] == FOLDS
    assert f"with {FOLDS} folds x 2 repeats:" in format_audit(again)
    # fewer repeats on resume leave the later round out; nothing trains
    first = resume_audit(audited, tiny_model_dir, copy, repeats=1)
    assert first.folds_run == 0
    np.testing.assert_allclose(first.held_out, result.held_out, atol=1e-6)
    for bad in (0, 1.5, True):
        with pytest.raises(ConfigError, match=rf"repeats={bad!r} must be an integer >= 1"):
            audit(train_file=audited["train"], output_dir=copy, repeats=bad, **FAST)


def test_overwrite_replaces_the_earlier_audit_and_everything_it_wrote(audited, tiny_model_dir, tmp_path):
    import shutil

    copy = tmp_path / "audit"
    shutil.copytree(audited["result"].output_dir, copy)
    assert (copy / "data_map.csv").is_file() and (copy / "reviews.cleaned.csv").is_file()
    with pytest.raises(ConfigError, match=rf"holds an earlier audit \({FOLDS} of {FOLDS} folds done\)"):
        audit(train_file=audited["train"], model_name=tiny_model_dir, output_dir=copy, folds=2, **FAST)
    again = audit(
        train_file=audited["train"],
        model_name=tiny_model_dir,
        output_dir=copy,
        folds=2,
        overwrite=True,
        **FAST,
    )
    assert again.folds_run == 2 and sorted(p.name for p in copy.glob("fold-*")) == ["fold-1", "fold-2"]
    # the old audit's data map and cleaned copy described other folds: gone with it
    assert not (copy / "data_map.csv").exists() and not list(copy.glob("*.cleaned.*"))
    assert json.loads((copy / "audit.json").read_text())["folds"] == 2


def test_train_excludes_flagged_rows_and_records_it(audited, tiny_model_dir, tmp_path):
    result = audited["result"]
    top = 5
    run = fine_tune(
        train_file=audited["train"],
        model_name=tiny_model_dir,
        output_dir=tmp_path / "run",
        exclude_rows=result.issues_file,
        exclude_top=top,
        validation_fraction=0,
        **{**FAST, "num_train_epochs": 1},
    )
    manifest = json.loads((run.model_path / "modernbert_tasks.json").read_text())
    training = manifest["training"]
    assert training["excluded_rows"] == {"file": "label_issues.csv", "rows": top, "exclude_top": top}
    assert training["num_examples"]["train"] == ROWS - top


def test_resume_skips_finished_folds(audited, tiny_model_dir, caplog):
    out = audited["result"].output_dir
    # fold 2 "was interrupted" after training: its predictions and final model are gone, its
    # checkpoint is not
    (out / "fold-2" / "held_out_predictions.json").unlink()
    import shutil

    shutil.rmtree(out / "fold-2" / "model")
    before = {k: (out / f"fold-{k}" / "held_out_predictions.json").stat().st_mtime_ns for k in (1, 3)}
    with pytest.raises(ConfigError, match=r"holds an earlier audit \(2 of 3 folds done\)"):
        audit(train_file=audited["train"], model_name=tiny_model_dir, output_dir=out, folds=FOLDS, **FAST)
    caplog.set_level("INFO", logger="modernbert_tasks")
    again = resume_audit(audited, tiny_model_dir, out)
    assert again.folds_run == 1
    assert "fold 1/3: done earlier" in caplog.text and "fold 3/3: done earlier" in caplog.text
    assert "Resuming from" in caplog.text  # fold 2 continued from its checkpoint
    assert {k: (out / f"fold-{k}" / "held_out_predictions.json").stat().st_mtime_ns for k in (1, 3)} == before
    assert (out / "fold-2" / "held_out_predictions.json").is_file()
    recall = len(set(again.flagged) & set(audited["flipped"])) / FLIPS
    assert recall >= 0.8
    # another folds count is another audit: resume refuses to mix them
    with pytest.raises(ConfigError, match="differs in: folds"):
        audit(
            train_file=audited["train"],
            model_name=tiny_model_dir,
            output_dir=out,
            folds=4,
            resume=True,
            **FAST,
        )


def test_cli_prints_the_noise_table(audited, tiny_model_dir, capsys):
    out = audited["result"].output_dir
    result = run_cli(
        "audit",
        "--train-file",
        str(audited["train"]),
        "--model",
        str(tiny_model_dir),
        "--output-dir",
        str(out),
        "--folds",
        str(FOLDS),
        "--resume",
        "--learning-rate",
        "1e-3",
        "--num-train-epochs",
        "6",
        "--disable-tqdm",
        "--report-to",
        "none",
        "--warmup-steps",
        "0",
        "--max-length",
        "32",
        "--precision",
        "fp32",
        "--seed",
        "3",
        "--probabilities",
        "held_out",
        "--data-map",
        "--data-map-points",
        "2",
    )
    printed, errors = result.stdout, result.stderr
    assert result.returncode == 0, errors
    assert f"Audited {ROWS} rows with {FOLDS} folds" in printed
    assert "est. noise rate" in printed and "given \\ true" in printed
    assert "--exclude-rows" in printed
    assert f"Data map          {out / 'data_map.csv'}" in printed


# --- refused inputs (no training) -----------------------------------------------------------
def test_exclude_rows_from_other_data_is_refused(audited, tiny_model_dir, tmp_path):
    issues = audited["result"].issues_file
    other = write_reviews(tmp_path / "other.csv", reviews(ROWS, seed=99))
    with pytest.raises(DataError, match="does not match the training data at row"):
        fine_tune(
            train_file=other,
            model_name=tiny_model_dir,
            output_dir=tmp_path / "a",
            exclude_rows=issues,
            **FAST,
        )
    shorter = write_reviews(tmp_path / "shorter.csv", audited["rows"][:150])
    with pytest.raises(DataError, match="comes from an audit of 300 rows.*has 150 rows"):
        fine_tune(
            train_file=shorter,
            model_name=tiny_model_dir,
            output_dir=tmp_path / "b",
            exclude_rows=issues,
            **FAST,
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_exclude_rows_file_saved_by_a_spreadsheet(audited, tiny_model_dir, tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark: read as the same file. A file in
    another encoding is refused with the fix, before training."""
    issues = audited["result"].issues_file
    text = issues.read_text(encoding="utf-8")
    bom = tmp_path / "bom.csv"
    bom.write_text(text, encoding="utf-8-sig")
    from modernbert_tasks.training.exclusion import read_row_file

    assert read_row_file(bom) == read_row_file(issues) and len(read_row_file(bom)) > 0
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.encode("utf-8") + "999999,caf\xe9\n".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"latin\.csv'? is not UTF-8 text .*Save it as 'CSV UTF-8'"):
        fine_tune(
            train_file=audited["train"],
            model_name=tiny_model_dir,
            output_dir=tmp_path / "c",
            exclude_rows=latin,
            **FAST,
        )
    assert not (tmp_path / "c").exists()


def test_too_few_rows_per_class(tiny_model_dir, tmp_path):
    rows = reviews(40, seed=1)
    rows = [r for r in rows if r[1] == "pos"][:30] + [("the film was dull", "neg")] * 3
    train = write_reviews(tmp_path / "few.csv", rows)
    with pytest.raises(DataError, match=r"'neg' has 3 rows.*at least 5"):
        audit(train_file=train, model_name=tiny_model_dir, output_dir=tmp_path / "audit", folds=5, **FAST)
    assert not (tmp_path / "audit").exists()


def test_single_class_and_regression_are_refused(tiny_model_dir, tmp_path):
    (tmp_path / "sst2").mkdir()
    one = write_reviews(tmp_path / "one.csv", [(t, "pos") for t, _ in reviews(20, 1)])
    # inferred from the data, the task itself refuses one label
    with pytest.raises(
        DataError,
        match=r"single value \['pos'\]; classification needs at "
        "least two labels",
    ):
        audit(train_file=one, model_name=tiny_model_dir, output_dir=tmp_path / "a", **FAST)
    # a registered task with two labels, on data that holds only one of them
    write_tsv(tmp_path / "sst2" / "train.tsv", [(t, 1) for t, _ in make_sentiment_rows(20, 1)])
    with pytest.raises(DataError, match=r"single label \('positive', all 20 rows\)"):
        audit(
            "sst2", data_dir=tmp_path / "sst2", model_name=tiny_model_dir, output_dir=tmp_path / "a", **FAST
        )
    scores = write_reviews(
        tmp_path / "scores.csv", [(t, f"{0.5 + i / 100:.2f}") for i, (t, _) in enumerate(reviews(20, 1))]
    )
    with pytest.raises(ConfigError, match="regression task: the label audit supports"):
        audit(train_file=scores, model_name=tiny_model_dir, output_dir=tmp_path / "b", **FAST)


def test_options_the_audit_cannot_honour_are_refused_before_anything_runs(tiny_model_dir, tmp_path):
    train = write_reviews(tmp_path / "r.csv", reviews(40, 2))
    out = tmp_path / "audit"
    refused = [
        ({"exclude_top": 0}, r"exclude_top=0: the audit excludes each fold's own rows"),
        ({"exclude_rows": "issues.csv"}, r"exclude_rows='issues.csv'"),
        (
            {"filter_by": "bogus"},
            r"filter_by='bogus' is not a cleanlab filter; expected one of prune_by_noise_rate",
        ),
    ]
    for extra, message in refused:
        with pytest.raises(ConfigError, match=message):
            audit(train_file=train, model_name=tiny_model_dir, output_dir=out, folds=2, **FAST, **extra)
    # a share of each fold's rows held out for evaluation would count as trained on
    for extra, used in (
        ({"data_map": True}, "data_map=True"),
        ({"probabilities": "fold_ensemble"}, "probabilities='fold_ensemble'"),
    ):
        with pytest.raises(
            ConfigError, match=rf"validation_fraction=0.1 holds a share .* and {used} needs every row"
        ):
            audit(
                train_file=train,
                model_name=tiny_model_dir,
                output_dir=out,
                folds=2,
                validation_fraction=0.1,
                **FAST,
                **extra,
            )
    # hub data has no local file to clean: refused before the folds train
    with pytest.raises(ConfigError, match="write_cleaned=True copies a local training file"):
        audit("sst2", model_name=tiny_model_dir, output_dir=out, folds=2, write_cleaned=True, **FAST)
    assert not out.exists()
    # a label with one row cannot be held out and trained on: fewer folds would not help either
    one = write_reviews(tmp_path / "one.csv", [*reviews(20, 3), ("the film was dull", "meh")])
    with pytest.raises(DataError, match=r"'meh' has 1 row;.*at least 2 \(one per fold\)\. Add rows"):
        audit(train_file=one, model_name=tiny_model_dir, output_dir=out, folds=2, **FAST)


def test_a_label_without_rows_is_named(tiny_model_dir, tmp_path, caplog):
    train = write_reviews(tmp_path / "r.csv", reviews(40, 5))
    caplog.set_level("WARNING", logger="modernbert_tasks")
    result = audit(
        train_file=train,
        labels=["neg", "pos", "meh"],
        model_name=tiny_model_dir,
        output_dir=tmp_path / "audit",
        folds=2,
        **FAST,
    )
    assert result.labels == ["neg", "pos", "meh"]
    assert "no training row is labelled 'meh', so the fold models never learn it" in caplog.text


def test_folder_of_a_training_run_is_refused(tiny_model_dir, tmp_path):
    train = write_reviews(tmp_path / "r.csv", reviews(40, 2))
    # folds without a readable plan cannot be told apart from another audit's
    (tmp_path / "lost" / "fold-1").mkdir(parents=True)
    (tmp_path / "lost" / "audit_plan.json").write_text("{trunc")
    for resume in (False, True):
        with pytest.raises(
            ConfigError, match=r"holds audit folds \(fold-1\) but audit_plan.json is missing or unreadable"
        ):
            audit(
                train_file=train,
                model_name=tiny_model_dir,
                output_dir=tmp_path / "lost",
                folds=2,
                resume=resume,
                **FAST,
            )
    assert sorted(p.name for p in (tmp_path / "lost").iterdir()) == ["audit_plan.json", "fold-1"]
    (tmp_path / "run" / "checkpoint-10").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds a training run .*checkpoint-10.*another output_dir"):
        audit(train_file=train, model_name=tiny_model_dir, output_dir=tmp_path / "run", folds=2, **FAST)


def test_missing_cleanlab_gives_the_install_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cleanlab", None)
    with pytest.raises(ConfigError, match=r"needs cleanlab.*pip install 'modernbert-tasks\[audit\]'"):
        audit(train_file=tmp_path / "x.csv")


# --- the cleanlab step on known probabilities -------------------------------------------------
def _noisy(n: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k) * 0.3, n) * 0.2
    probs[np.arange(n), truth] += 0.8
    given = truth.copy()
    flipped = rng.choice(n, n // 20, replace=False)
    given[flipped] = (truth[flipped] + 1 + rng.integers(0, k - 1, len(flipped))) % k
    return given, probs, set(flipped.tolist())


@pytest.mark.parametrize("classes", [2, 4])
def test_find_issues_single_label(classes):
    given, probs, flipped = _noisy(400, classes, seed=classes)
    names = [f"c{i}" for i in range(classes)]
    issues = find_issues(given.tolist(), probs, names, multi_label=False)
    found = set(issues.ranked)
    # cleanlab flags as many rows as its estimate of the noise: it misses a few of the 5%
    assert len(found & flipped) / len(flipped) >= 0.75
    assert len(found & flipped) / len(found) >= 0.9
    ranked_p = issues.given_probability[issues.ranked]
    assert list(ranked_p) == sorted(ranked_p)  # worst first
    assert np.array(issues.confident_joint).shape == (classes, classes)
    assert all(0 <= r < 0.3 for r in issues.noise_rate.values())


def test_find_issues_multi_label():
    rng = np.random.default_rng(0)
    n, k = 300, 3
    truth = (rng.random((n, k)) < 0.4).astype(float)
    probs = np.where(truth > 0, 0.9, 0.1) + rng.normal(0, 0.03, (n, k))
    given = truth.copy()
    flipped = rng.choice(n, 15, replace=False)
    given[flipped, 0] = 1 - given[flipped, 0]
    issues = find_issues(given.tolist(), np.clip(probs, 0.01, 0.99), ["a", "b", "c"], multi_label=True)
    found = set(issues.ranked)
    assert len(found & set(flipped.tolist())) / 15 >= 0.8
    assert issues.noise_rate["a"] > issues.noise_rate["b"]
    assert np.array(issues.confident_joint).shape == (k, 2, 2)


# --- the data map's arithmetic on known logits ------------------------------------------------
def test_data_map_steps_and_scores():
    from modernbert_tasks.auditing.data_map import DataMap, given_scores, record_steps

    # 4 points in each of 2 epochs of 10 steps, and the last step of a run cut at 15 steps
    assert sorted(record_steps(10, 20, 4)) == [2, 5, 8, 10, 12, 15, 18, 20]
    assert sorted(record_steps(10, 15, 2)) == [5, 10, 15]
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0]])
    p, margin = given_scores(logits, [0, 2], multi_label=False)
    np.testing.assert_allclose(margin, [2.0, -2.0])  # the given logit minus the largest other
    np.testing.assert_allclose(p, [np.exp(2) / np.exp([2, 0, -1]).sum(), np.exp(1) / np.exp([0, 3, 1]).sum()])
    # multi-label: the row's worst label, its logit signed by the given 0/1
    p, margin = given_scores(np.array([[3.0, -2.0], [1.0, 4.0]]), [[1, 0], [1, 0]], multi_label=True)
    np.testing.assert_allclose(margin, [2.0, -4.0])
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-np.array([2.0, -4.0]))))
    # pooled: means over every point, variability the mean of each fold's standard deviation
    pooled = DataMap(3)
    pooled.add([0, 1], np.array([[0.2, 0.9], [0.4, 0.9]]), np.array([[-1.0, 2.0], [1.0, 2.0]]))
    pooled.add([1, 2], np.array([[0.7, 0.5]]), np.array([[0.5, -0.5]]))
    np.testing.assert_allclose(pooled.confidence, [0.3, (0.9 + 0.9 + 0.7) / 3, 0.5])
    np.testing.assert_allclose(pooled.aum, [0.0, 4.5 / 3, -0.5])
    np.testing.assert_allclose(pooled.correctness, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(pooled.variability, [0.1, 0.0, 0.0])
