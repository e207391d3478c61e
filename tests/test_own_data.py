"""Your own data without a plugin: tasks inferred from files, labels that cannot shift,
held-out evaluation, and files as spreadsheets write them (';', BOM, CRLF, cp1252)."""

from __future__ import annotations

import csv
import json
import logging
import random
import shutil
from pathlib import Path

import pytest

from modernbert_tasks import DataError, Task, fine_tune, load_finetuned
from modernbert_tasks.data import encode_labels, infer_labels
from modernbert_tasks.testing import FAST, run_cli

FAST = {**FAST, "num_train_epochs": 3, "warmup_steps": 0}
TEAMS = {
    "billing": ["invoice", "refund", "charge", "payment", "receipt", "price"],
    "tech": ["crash", "error", "login", "bug", "password", "install"],
    "sales": ["demo", "quote", "upgrade", "discount", "license", "trial"],
}
FILLER = ["please help with the", "question about my", "urgent :", "hi team ,", "i need a", "about the"]


def ticket_rows(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        team = rng.choice(sorted(TEAMS))
        words = TEAMS[team]
        rows.append((f"{rng.choice(FILLER)} {rng.choice(words)} and {rng.choice(words)}", team))
    return rows


def write_csv(
    path: Path, rows, header=("text", "category"), delimiter=",", bom=False, line_end="\n", encoding="utf-8"
) -> Path:
    with open(path, "w", newline="", encoding=("utf-8-sig" if bom else encoding)) as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator=line_end)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- the label rule ---------------------------------------------------------------------------
def test_digit_names_map_cells_by_name_row_by_row():
    """Star ratings: names "1".."5" and integer cells 1..5. 1 -> "1", never "2"."""
    names = ("1", "2", "3", "4", "5")
    cells = [1, 2, 3, 4, 5, 3, 1]
    ids = encode_labels(
        cells, names, "single_label_classification", column="stars", source="t", task_name="stars"
    )
    assert [names[i] for i in ids] == ["1", "2", "3", "4", "5", "3", "1"]
    # cells read as floats or text with spaces mean the same names
    assert encode_labels(
        [5.0, " 4 ", "1"], names, "single_label_classification", column="stars", source="t", task_name="stars"
    ) == [4, 3, 0]
    # with digit names, a cell is never an id: 0 is not a label (it would have meant "1")
    with pytest.raises(DataError, match=r"'0'.*never read as ids|0.*never read as ids"):
        encode_labels(
            [0, 1], names, "single_label_classification", column="stars", source="t", task_name="stars"
        )


def test_plugin_task_with_digit_names_maps_integer_cells_by_name(tmp_path):
    task = Task(
        name="stars", text_columns=("review",), label_column="stars", labels=("1", "2", "3", "4", "5")
    )
    path = write_csv(
        tmp_path / "train.csv", [("bad", 1), ("ok", 3), ("great", 5), ("meh", 2)], header=("review", "stars")
    )
    ds = task.load_dataset(data_files={"train": path})["train"]
    assert [task.labels[i] for i in ds["label"]] == ["1", "3", "5", "2"]


def test_names_win_over_ids_and_whitespace_is_counted_once(caplog):
    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        ids = encode_labels(
            ["sales ", "tech", " billing"],
            ("billing", "sales", "tech"),
            "single_label_classification",
            column="team",
            source="f.csv",
            task_name="t",
        )
    assert ids == [1, 2, 0]
    assert sum("surrounding whitespace" in r.message for r in caplog.records) == 1
    assert "2 label cell(s)" in caplog.text
    # non-digit names: an integer cell that matches no name may be an id
    assert encode_labels(
        [1, "negative"],
        ("negative", "positive"),
        "single_label_classification",
        column="label",
        source="f",
        task_name="t",
    ) == [1, 0]


def test_label_inference_order_and_problem_types():
    assert infer_labels([10, 2, 1, 2]) == (("1", "2", "10"), "single_label_classification")
    assert infer_labels(["b", "a ", "c"]) == (("a", "b", "c"), "single_label_classification")
    assert infer_labels([0.5, 1.25, 3.0]) == ((), "regression")
    assert infer_labels(["x,y", "y"], label_separator=",") == (("x", "y"), "multi_label_classification")
    assert infer_labels([["b"], ["a", "b"]]) == (("a", "b"), "multi_label_classification")
    assert infer_labels([1, 2], problem_type="regression") == ((), "regression")


# --- inference from files ---------------------------------------------------------------------
def test_from_data_infers_columns_and_names_the_task(tmp_path):
    folder = tmp_path / "Support Tickets"
    folder.mkdir()
    write_csv(folder / "train.csv", ticket_rows(30, 1))
    task = Task.from_data(data_dir=folder)
    assert task.name == "support-tickets"
    assert task.text_columns == ("text",) and task.label_column == "category"
    assert task.labels == ("billing", "sales", "tech")
    assert task.main_metric == "macro_f1"


def test_ambiguous_columns_list_them_and_name_the_option(tmp_path):
    path = write_csv(
        tmp_path / "t.csv", [("a b", "c d", "x"), ("e", "f", "y")], header=("subject", "body", "label")
    )
    with pytest.raises(DataError) as info:
        Task.from_data({"train": path})
    message = str(info.value)
    assert "['subject', 'body']" in message and "text_columns=" in message
    assert "--text-column" in message
    pair = Task.from_data({"train": path}, text_columns=["subject", "body"])
    assert pair.is_pair


def test_validation_labels_outside_training_are_named_with_rows(tmp_path):
    train = write_csv(tmp_path / "train.csv", ticket_rows(20, 1))
    dev = write_csv(tmp_path / "dev.csv", [("refund please", "billing"), ("hello", "legal")])
    task = Task.from_data({"train": train})
    with pytest.raises(DataError, match=r"'legal' in 1 row\(s\): 2 "):
        task.load_dataset(data_files={"train": train, "validation": dev})


def test_spreadsheet_exports_semicolon_bom_crlf(tmp_path, caplog):
    path = write_csv(tmp_path / "export.csv", ticket_rows(12, 3), delimiter=";", bom=True, line_end="\r\n")
    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        task = Task.from_data({"train": path})
    assert "';'-separated" in caplog.text  # says which delimiter was used
    assert task.text_columns == ("text",)  # the BOM is not part of the column name
    ds = task.load_dataset(data_files={"train": path})["train"]
    assert not any("\r" in t for t in ds["text"]) and len(ds) == 12


def test_non_utf8_names_the_likely_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncafé crème,a\nnaïve,b\n".encode("cp1252"))
    with pytest.raises(DataError, match="cp1252") as info:
        Task.from_data({"train": path})
    assert "iconv -f cp1252" in str(info.value)


def test_numbers_in_a_text_column_become_text_with_a_warning(tmp_path, caplog):
    path = write_csv(tmp_path / "codes.csv", [(101, "a"), (202, "b"), (303, "a")], header=("code", "label"))
    task = Task(name="codes", text_columns=("code",), labels=("a", "b"))
    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        ds = task.load_dataset(data_files={"train": path})["train"]
    assert ds["code"] == ["101", "202", "303"]
    assert "'code' holds int64 values" in caplog.text and "converting all 3" in caplog.text


# --- end to end -------------------------------------------------------------------------------
def test_star_ratings_where_5_means_positive(tmp_path, tiny_model_dir):
    rng = random.Random(4)
    pos, neg = ["great", "superb", "brilliant"], ["awful", "dull", "terrible"]
    rows = [
        (f"the film was {rng.choice(pos)}", 5)
        if rng.random() < 0.5
        else (f"the film was {rng.choice(neg)}", 1)
        for _ in range(240)
    ]
    train = write_csv(tmp_path / "train.csv", rows, header=("review", "stars"))
    result = fine_tune(train_file=train, model_name=tiny_model_dir, output_dir=tmp_path / "run", **FAST)
    model = load_finetuned(result.model_path)
    assert list(model.labels) == ["1", "5"]
    assert result.metrics["accuracy"] >= 0.9
    out = model.predict(["the film was superb", "the film was awful"])
    assert [o["label"] for o in out] == ["5", "1"]


def test_held_out_split_is_stratified_seeded_and_recorded(tmp_path, tiny_model_dir):
    rows = ticket_rows(200, 5)
    train = write_csv(tmp_path / "tickets.csv", rows)
    args = dict(train_file=train, model_name=tiny_model_dir, max_steps=2, **FAST)
    first = fine_tune(output_dir=tmp_path / "a", **args)
    manifest = json.loads((first.model_path / "modernbert_tasks.json").read_text())
    held = manifest["training"]["held_out_eval"]
    assert held == {"fraction": 0.1, "seed": 42, "stratified": True, "rows": 20, "from_rows": 200}
    assert manifest["training"]["num_examples"] == {"train": 180, "eval": 20}
    second = fine_tune(output_dir=tmp_path / "b", **args)
    assert first.metrics["loss"] == second.metrics["loss"]  # the same rows, seeded

    from modernbert_tasks.data import hold_out

    task = Task.from_data({"train": train})
    ds = task.load_dataset(data_files={"train": train})["train"]
    _, held_rows = hold_out(ds, 0.1, 42, stratify=True)
    counts = sorted(held_rows["label"].count(k) for k in range(3))
    whole = sorted(ds["label"].count(k) for k in range(3))
    assert all(abs(c - w / 10) <= 1 for c, w in zip(counts, whole, strict=True))


def test_regression_inferred_from_float_labels(tmp_path, tiny_model_dir):
    rng = random.Random(6)
    rows = []
    for _ in range(300):
        score = rng.choice([0.5, 1.5, 2.5, 3.5])
        word = {0.5: "awful", 1.5: "dull", 2.5: "good", 3.5: "superb"}[score]
        rows.append((f"it was {word} , {word}", score + rng.uniform(-0.2, 0.2)))
    train = write_csv(tmp_path / "scores.csv", rows, header=("text", "score"))
    result = fine_tune(
        train_file=train,
        label_column="score",
        model_name=tiny_model_dir,
        output_dir=tmp_path / "run",
        **{**FAST, "num_train_epochs": 6},
    )
    manifest = json.loads((result.model_path / "modernbert_tasks.json").read_text())
    assert manifest["task"]["definition"]["problem_type"] == "regression"
    assert result.metrics["pearson"] > 0.8


def test_multi_label_inferred_from_a_separator(tmp_path, tiny_model_dir):
    rng = random.Random(7)
    rows = []
    for _ in range(300):
        tags = sorted({rng.choice(["plot", "acting"]) for _ in range(rng.randint(1, 2))})
        words = {"plot": "the story twists", "acting": "the cast shines"}
        rows.append((" and ".join(words[t] for t in tags), "|".join(tags)))
    train = write_csv(tmp_path / "tags.csv", rows, header=("text", "tags"))
    result = fine_tune(
        train_file=train,
        label_column="tags",
        label_separator="|",
        model_name=tiny_model_dir,
        output_dir=tmp_path / "run",
        **{**FAST, "num_train_epochs": 6},
    )
    model = load_finetuned(result.model_path)
    assert model.task.problem_type == "multi_label_classification"
    assert list(model.labels) == ["acting", "plot"]
    assert result.metrics["micro_f1"] >= 0.85


def test_pairs_from_two_text_columns(tmp_path, tiny_model_dir):
    rng = random.Random(8)
    rows = []
    for _ in range(240):
        same = rng.random() < 0.5
        a = rng.choice(["red", "blue", "green"])
        b = a if same else rng.choice([c for c in ["red", "blue", "green"] if c != a])
        rows.append((f"the {a} car", f"a {b} car", "same" if same else "different"))
    train = write_csv(tmp_path / "pairs.csv", rows, header=("first", "second", "label"))
    task = Task.from_data({"train": train}, text_columns="first,second")
    assert task.is_pair and task.labels == ("different", "same")
    result = fine_tune(
        train_file=train,
        text_columns=["first", "second"],
        model_name=tiny_model_dir,
        output_dir=tmp_path / "run",
        max_steps=2,
        **FAST,
    )
    out = load_finetuned(result.model_path).predict([("the red car", "a red car")])
    assert out[0]["label"] in ("same", "different")


def test_saved_model_needs_neither_the_data_nor_the_arguments(tmp_path, tiny_model_dir):
    data = tmp_path / "tickets"
    data.mkdir()
    write_csv(data / "train.csv", ticket_rows(240, 9))
    write_csv(data / "validation.csv", ticket_rows(60, 10))
    result = fine_tune(str(data), model_name=tiny_model_dir, output_dir=tmp_path / "run", **FAST)
    assert result.metrics["macro_f1"] >= 0.8  # chance is about 0.33
    held = ticket_rows(60, 11)
    shutil.rmtree(data)
    model = load_finetuned(result.model_path)
    assert model.task.name == "tickets"
    predicted = [o["label"] for o in model.predict([t for t, _ in held])]
    assert sum(p == g for p, (_, g) in zip(predicted, held, strict=True)) / len(held) >= 0.8
    scored = model.evaluate([(t, g) for t, g in held])
    assert scored["macro_f1"] >= 0.8


def test_hub_dataset_offline_fails_fast_with_the_local_form(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        Task.from_data(dataset="acme/no-such-dataset", cache_dir=str(tmp_path))
    message = str(info.value)
    assert "'acme/no-such-dataset'" in message
    assert "data_files={'train': 'train.csv'" in message and "--train-file" in message


# --- the command line -------------------------------------------------------------------------
def test_cli_trains_evaluates_and_predicts_on_a_spreadsheet_csv(tmp_path, tiny_model_dir):
    """A ';'-separated, BOM, CRLF export: train -> predict returns the original strings."""
    train = write_csv(
        tmp_path / "tickets.csv",
        ticket_rows(300, 12),
        header=("text", "team"),
        delimiter=";",
        bom=True,
        line_end="\r\n",
    )
    proc = run_cli(
        "train",
        "--train-file",
        train,
        "--text-column",
        "text",
        "--label-column",
        "team",
        "--model",
        tiny_model_dir,
        "--output-dir",
        tmp_path / "run",
        "--learning-rate",
        "1e-3",
        "--num-train-epochs",
        "3",
        "--warmup-steps",
        "0",
        "--report-to",
        "none",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "run" / "model" / "modernbert_tasks.json").read_text())
    assert manifest["metrics"]["macro_f1"] >= 0.8  # on the held-out 10%; chance ~0.33
    proc = run_cli(
        "predict",
        tmp_path / "run" / "model",
        "please help with the refund and invoice",
        "urgent : crash and login",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = [json.loads(line)["label"] for line in proc.stdout.splitlines()]
    assert labels == ["billing", "tech"]
    val = write_csv(tmp_path / "val.csv", ticket_rows(40, 13), header=("text", "team"))
    proc = run_cli("evaluate", tmp_path / "run" / "model", "--data-file", val, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["macro_f1"] >= 0.8


def test_task_name_from_a_relative_train_file(tmp_path, monkeypatch):
    folder = tmp_path / "helpdesk"
    folder.mkdir()
    write_csv(folder / "train.csv", ticket_rows(12, 14))
    monkeypatch.chdir(folder)
    assert Task.from_data({"train": "train.csv"}).name == "helpdesk"
    assert Task.from_data({"train": "train.csv"}, name="mine").name == "mine"


def test_a_config_task_mapping_is_a_clear_usage_error(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"task": {"name": "tickets"}}))
    proc = run_cli("train", "--config", config)
    assert proc.returncode == 2
    assert "task must be a registered task's name" in proc.stderr
    assert "train_file" in proc.stderr and "Traceback" not in proc.stderr


# --- columns that are easy to get wrong ------------------------------------------------------
def test_a_duplicated_column_name_is_refused_not_renamed(tmp_path):
    path = write_csv(tmp_path / "dup.csv", [("a b", "c", "billing")], header=("text", "text", "team"))
    with pytest.raises(
        DataError,
        match=r"dup\.csv' names column 'text' more than once in its "
        r"header \['text', 'text', 'team'\]\. Rename",
    ):
        Task.from_data({"train": path})


def test_the_only_column_besides_the_text_is_the_label(tmp_path, caplog):
    path = write_csv(tmp_path / "t.csv", ticket_rows(12, 3), header=("text", "team"))
    with caplog.at_level("INFO", logger="modernbert_tasks"):
        task = Task.from_data({"train": path})
    assert task.text_columns == ("text",) and task.label_column == "team"
    assert "label column 'team', the only column besides the text column 'text'" in caplog.text
    # named text column, any name for the other
    path = write_csv(tmp_path / "u.csv", ticket_rows(12, 3), header=("ticket", "owner"))
    task = Task.from_data({"train": path}, text_columns="ticket")
    assert task.label_column == "owner"


def test_one_hot_columns_beside_another_column_get_a_message_naming_label_columns(tmp_path):
    """Only 0/1 columns besides the text are read as one label per column (test_label_columns);
    with another column there, the message says how to name them."""
    path = write_csv(
        tmp_path / "oh.csv",
        [("bad words", "u1", 1, 0, 1), ("fine", "u2", 0, 0, 0)],
        header=("text", "user", "toxic", "obscene", "insult"),
    )
    with pytest.raises(DataError) as info:
        Task.from_data({"train": path}, text_columns="text")
    message = str(info.value)
    assert "label_column='insult'" in message and "'...'" not in message
    assert "['toxic', 'obscene', 'insult'] hold only 0/1" in message
    assert (
        "label_columns=['toxic', 'obscene', 'insult'] (CLI: --label-columns toxic obscene insult)" in message
    )


def test_a_task_name_that_is_also_a_folder_means_the_task_and_says_so(tmp_path, monkeypatch, caplog):
    from modernbert_tasks.training.task_source import resolve_task

    (tmp_path / "sst2").mkdir()
    write_csv(tmp_path / "sst2" / "train.csv", ticket_rows(12, 3))
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING", logger="modernbert_tasks"):
        task, _, args = resolve_task("sst2", {"data_dir": "elsewhere"})
    assert task.name == "sst2" and args["data_dir"] == "elsewhere"
    assert (
        "'sst2' is a registered task and also a folder in this folder: training the "
        "registered task. For the folder, pass './sst2' instead." in caplog.text
    )
    task, _, args = resolve_task("./sst2", {})
    assert (
        args["data_dir"] == "./sst2" and task.name == "sst2" and task.labels == ("billing", "sales", "tech")
    )
