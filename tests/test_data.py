"""Loading task data from local files in every supported format, and the checks on it."""

from __future__ import annotations

import json

import pytest

import modernbert_tasks as mt
from modernbert_tasks import DataError, Task
from modernbert_tasks.errors import speaking_cli

ROWS = [("a fine film", 1), ("a dull film", 0), ("moving and smart", 1), ("clumsy", 0)]
TASK = Task(name="toy", labels=("negative", "positive"))
PAIRS = Task(name="toy-pairs", labels=("different", "same"), text_columns=("s1", "s2"))


def test_sst2_from_local_tsv_files(sst2_dir):
    dd = mt.get_task("sst2").load_dataset(data_dir=str(sst2_dir))
    assert {k: len(v) for k, v in dd.items()} == {"train": 67349, "eval": 872, "test": 1821}
    for split in dd.values():
        assert set(split["label"]) == {0, 1}
        assert split.column_names == ["sentence", "label"]
    # test.tsv has CRLF line endings: no stray '\r' may reach the text or the labels
    assert not any(s.endswith("\r") for s in dd["test"]["sentence"])
    assert dd["test"][0]["sentence"] == "uneasy mishmash of styles and genres ."


def _write(path, fmt: str, rows, columns=("sentence", "label")):
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if fmt in ("tsv", "csv"):
        sep = "\t" if fmt == "tsv" else ","
        lines = [sep.join(columns)] + [sep.join(str(v) for v in r) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(records), encoding="utf-8")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    return path


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl", "json", "parquet"])
def test_every_local_format_loads_the_same_rows(tmp_path, fmt):
    _write(tmp_path / f"train.{fmt}", fmt, ROWS)
    _write(tmp_path / f"validation.{fmt}", fmt, ROWS[:2])
    dd = TASK.load_dataset(data_dir=str(tmp_path))
    assert set(dd) == {"train", "eval"}
    assert dd["train"]["sentence"] == [r[0] for r in ROWS]
    assert dd["train"]["label"] == [r[1] for r in ROWS]
    assert dd["eval"]["label"] == [1, 0]


def test_explicit_data_files_mix_formats_and_pairs(tmp_path):
    pair_rows = [("a", "b", "same"), ("c", "d", "different")]
    files = {
        "train": _write(tmp_path / "tr.csv", "csv", pair_rows, ("s1", "s2", "label")),
        "validation": _write(tmp_path / "va.jsonl", "jsonl", pair_rows, ("s1", "s2", "label")),
    }
    dd = PAIRS.load_dataset(data_files=files)
    assert dd["train"].column_names == ["s1", "s2", "label"]
    assert dd["eval"]["label"] == [1, 0]  # names mapped to ids


def test_string_labels_matching_names_are_mapped(tmp_path):
    rows = [("good", "positive"), ("bad", "negative"), ("fine", "1")]
    dd = TASK.load_dataset(data_files={"train": _write(tmp_path / "t.tsv", "tsv", rows)})
    assert dd["train"]["label"] == [1, 0, 1]


def test_crlf_is_accepted(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"sentence\tlabel\r\ngood\t1\r\nbad\t0\r\n")
    dd = TASK.load_dataset(data_files={"train": path})
    assert dd["train"]["sentence"] == ["good", "bad"] and dd["train"]["label"] == [1, 0]


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "is empty"),
        (b"sentence\tlabel\n", "no rows"),
        (b"sentence\tstars\ngood\t1\n", "no label column 'label'"),
        (b"text\tlabel\ngood\t1\n", "no column 'sentence'"),
        (b"sentence\tlabel\ngood\t1\nbad\t7\nmeh\tneutral\n", "'7', 'neutral' in 2 row(s): 2, 3"),
        (b"sentence\tlabel\ngood\t1\nbad\t\nugly\t\n", "empty or NaN in 2 row(s): 2, 3"),
        (b"sentence\tlabel\ngood\t1\n\t0\n", "column 'sentence' is empty in 1 row(s): 2"),
        (b"sentence\tlabel\ncaf\xe9\t1\n", "not valid UTF-8: byte 0xe9 at line 2"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, content, needle):
    path = tmp_path / "train.tsv"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        TASK.load_dataset(data_files={"train": path})
    assert needle in str(err.value)


def test_missing_file_and_empty_dir(tmp_path):
    with pytest.raises(DataError, match="not found: .*nope.tsv"):
        TASK.load_dataset(data_files={"train": tmp_path / "nope.tsv"})
    with pytest.raises(DataError, match="No split files found"):
        TASK.load_dataset(data_dir=str(tmp_path))
    with pytest.raises(DataError, match="not a split.*Did you mean: train"):
        TASK.load_dataset(data_files={"trian": _write(tmp_path / "x.tsv", "tsv", ROWS)})


def test_hub_unreachable_says_how_to_use_local_files(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1
    task = Task(name="hubonly", labels=("a", "b"), hub_id="no-such-org/no-such-dataset-xyz")
    with pytest.raises(DataError) as err:
        task.load_dataset()
    message = str(err.value)
    assert "'no-such-org/no-such-dataset-xyz'" in message
    assert "data_dir=" in message and "--data-dir" not in message  # Python's terms
    with speaking_cli(), pytest.raises(DataError) as err:  # as under the command line
        task.load_dataset()
    assert "--data-dir PATH" in str(err.value) and "data_dir=" not in str(err.value)


def test_metrics_are_offline_and_correct():
    import numpy as np

    logits = np.array([[2.0, 0.1], [0.2, 1.0], [0.3, 0.1], [0.0, 3.0]])
    labels = np.array([0, 1, 1, 1])
    assert TASK.compute_metrics(logits, labels) == {"accuracy": 0.75}
    reg = Task(name="reg", problem_type="regression", metrics=("pearson", "spearman"), main_metric="pearson")
    out = reg.compute_metrics(np.array([[0.1], [0.5], [0.9]]), np.array([1.0, 2.0, 3.0]))
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
