"""What prediction reads of a text: up to the model's position limit (not training's shorter
max_length), with every cut said per record and in one summary line; empty texts get no label."""

from __future__ import annotations

import json

import pytest

from modernbert_tasks import load_finetuned
from modernbert_tasks.cli import main
from modernbert_tasks.errors import ConfigError


def test_prediction_reads_past_the_training_length_up_to_the_models_limit(file_trained_model):
    manifest = json.loads((file_trained_model / "modernbert_tasks.json").read_text())
    fm = load_finetuned(file_trained_model, precision="fp32")
    assert manifest["max_length"] == fm.training_max_length <= 16  # 'auto' on 2-word texts
    assert manifest["prediction"] == {"max_length": 512, "long_text": "truncate"}  # positions
    assert fm.max_length == 512
    medium = " ".join(["invoice refund"] * 40)  # about 80 tokens: past 8, within 512
    (record,) = fm.predict([medium])
    assert "truncated" not in record and fm.last_truncation == (0, 1, 0)
    # read whole: not the same as reading its first 8 tokens, as before
    (cut,) = load_finetuned(file_trained_model, precision="fp32", max_length=8).predict([medium])
    assert cut["truncated"]["tokens_read"] == 8 and cut["truncated"]["tokens"] > 40
    assert cut["probabilities"] != record["probabilities"]


def test_a_text_past_the_models_limit_says_it_was_truncated(file_trained_model, caplog):
    fm = load_finetuned(file_trained_model, precision="fp32")
    huge = "invoice " * 2000
    with caplog.at_level("WARNING", logger="modernbert_tasks"):
        records = fm.predict(["refund please", huge])
    assert "truncated" not in records[0]
    assert records[1]["truncated"]["tokens_read"] == 512
    assert records[1]["truncated"]["tokens"] > 2000
    assert fm.last_truncation == (1, 2, records[1]["truncated"]["tokens"])
    assert "1 of 2 texts were longer than max_length=512 tokens" in caplog.text
    # evaluate reads the same way and says so too
    fm.evaluate([(huge, "billing"), ("crash", "tech")])
    assert fm.last_truncation[0] == 1


def test_cli_predict_marks_the_record_and_prints_one_summary_line(file_trained_model, tmp_path, capsys):
    big = tmp_path / "big.txt"
    big.write_text("refund please\n" + "invoice " * 3000 + "\n")
    assert main(["predict", str(file_trained_model), "--file", str(big)]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [1, 2]
    assert "truncated" not in records[0] and records[1]["truncated"]["tokens_read"] == 512
    assert err.count("were truncated") == 1
    assert "1 of 2 texts were longer than max_length=512 tokens" in err
    assert main(["predict", "--max-length", "4000", str(file_trained_model), "x"]) == 2
    assert "--max-length 4000; expected an integer from 8 to 512" in capsys.readouterr().err


def test_an_empty_text_gets_no_label_in_python_and_on_the_cli(file_trained_model, capsys):
    fm = load_finetuned(file_trained_model)
    got = fm.predict(["", "refund please", "   "])
    assert got[0] == got[2] == {"skipped": "empty text"}
    assert "label" in got[1]
    assert main(["predict", str(file_trained_model), ""]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record == {"text": "", "skipped": "empty text"}


def test_a_bad_prediction_length_is_refused_in_python_terms(file_trained_model):
    for bad in (4, 513, "long", True):
        with pytest.raises(ConfigError, match=f"max_length={bad!r}; expected an integer from 8 to 512"):
            load_finetuned(file_trained_model, max_length=bad)


def test_evaluate_takes_data_file_as_the_cli_spells_it(file_trained_model, tmp_path):
    data = tmp_path / "new.csv"
    data.write_text("text,team\nrefund invoice,billing\ncrash login,tech\n")
    fm = load_finetuned(file_trained_model)
    assert fm.evaluate(data_file=data) == fm.evaluate(data)
    with pytest.raises(ConfigError, match="data= or data_file=, not both"):
        fm.evaluate(data, data_file=data)
