"""load_finetuned and FineTunedModel: loading, safety checks, predict and evaluate."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from modernbert_tasks import ModelLoadError, Task, load_finetuned
from modernbert_tasks.artifacts.manifest import ManifestError, build_manifest, write_manifest
from modernbert_tasks.errors import ConfigError, DataError
from modernbert_tasks.inference import predictor as predictor_module
from modernbert_tasks.testing import build_tiny_modernbert, make_sentiment_rows, write_tsv

SENTIMENT = Task(
    name="sentiment-demo",
    labels=("negative", "positive"),
    max_length=64,
    text_prefix="review: ",
    metrics=("accuracy", "f1"),
)
PAIRS = Task(name="pairs-demo", text_columns=("premise", "hypothesis"), labels=("negative", "positive"))
TEXTS = [
    "great",
    "the film was dull , boring and far too long for what it had to say .",
    "what a moving experience",
    "i found the acting clumsy",
    "ok",
    "the story is wonderful and charming , the cast superb , the ending touching .",
]


def save_with_manifest(src: Path, dst: Path, task: Task, max_length: int | None = None) -> Path:
    """Copy a raw HF folder, give its config the task's labels, and write a manifest."""
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config["id2label"] = {str(i): name for i, name in task.id2label.items()}
    config["label2id"] = {name: i for i, name in task.id2label.items()}
    (dst / "config.json").write_text(json.dumps(config))
    write_manifest(
        dst,
        build_manifest(
            task,
            plugin="demo-plugin",
            plugin_version="1.0",
            max_length=max_length or task.max_length,
            metrics={"accuracy": 0.5},
            base_model="tiny",
            training={"learning_rate": 3e-5},
        ),
    )
    return dst


# how far "mixed" may move a probability from fp32's (bf16 moved one by at most 0.014 on
# MiniLM/SST-2; docs/deploying.md); its decisions are fp32's exactly
MIXED_ATOL = 0.02


def manual_logits(fm, texts, second=None) -> np.ndarray:
    """What the model gives for each text alone, tokenized the way training does."""
    rows = []
    for i, text in enumerate(texts):
        args = [fm.text_prefix + text] + ([fm.text_prefix + second[i]] if second else [])
        enc = fm.tokenizer(*args, truncation=True, max_length=fm.max_length, return_tensors="pt")
        enc = {k: v for k, v in enc.items() if k in fm.tokenizer.model_input_names}
        with torch.inference_mode():
            rows.append(fm.model(**enc).logits[0].numpy())
    return np.stack(rows)


@pytest.fixture(scope="module")
def sentiment_model(tiny_model_dir, tmp_path_factory):
    return save_with_manifest(
        tiny_model_dir, tmp_path_factory.mktemp("m") / "model", SENTIMENT, max_length=16
    )


# --- loading ---------------------------------------------------------------------------------
def test_plain_hf_folder_loads_and_predicts(tiny_model_dir, cpu_kind):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" never warns, whichever it picks
        fm = load_finetuned(tiny_model_dir)
    assert fm.task is None and fm.manifest is None
    assert fm.labels == ("LABEL_0", "LABEL_1")
    assert fm.max_length == min(fm.tokenizer.model_max_length, 512)
    assert fm.device.type == "cpu" and fm.precision == ("mixed" if cpu_kind else "fp32")
    (result,) = fm.predict("a wonderful film")
    (exact,) = manual_logits(fm, ["a wonderful film"])
    assert result["label"] == fm.labels[int(exact.argmax())]  # fp32's label either way
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert result["score"] == max(result["probabilities"].values())


def test_manifest_folder_loads_without_the_plugin(sentiment_model):
    from modernbert_tasks import list_tasks

    assert "sentiment-demo" not in {t["name"] for t in list_tasks()}
    fm = load_finetuned(sentiment_model, precision="fp32")  # scores held to fp32's, 1e-5
    assert fm.task == SENTIMENT
    assert fm.labels == ("negative", "positive")
    assert fm.training_max_length == 16  # the manifest's, not the task default 64
    assert fm.max_length == 512  # prediction reads up to the model's positions
    assert fm.text_prefix == "review: "
    # prefix and truncation applied exactly as in training
    got = fm.predict(TEXTS)
    probs = torch.softmax(torch.from_numpy(manual_logits(fm, TEXTS)), -1).numpy()
    assert [r["label"] for r in got] == [fm.labels[k] for k in probs.argmax(-1)]
    np.testing.assert_allclose([r["score"] for r in got], probs.max(-1), atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "mixed"])
def test_predict_restores_input_order_across_batches_and_chunks(sentiment_model, monkeypatch, precision):
    fm = load_finetuned(sentiment_model, precision=precision)
    texts = [TEXTS[i % len(TEXTS)] + " !" * (i % 7) for i in range(23)]
    one_by_one = [fm.predict(t)[0] for t in texts]
    monkeypatch.setattr(predictor_module, "CHUNK_SIZE", 10)  # several chunks, ragged batches
    batched = fm.predict(texts, batch_size=3)
    assert [r["label"] for r in batched] == [r["label"] for r in one_by_one]
    # bf16 sums depend on the batch's shape, so bf16 probabilities move a little with batching
    np.testing.assert_allclose(
        [r["probabilities"]["positive"] for r in batched],
        [r["probabilities"]["positive"] for r in one_by_one],
        atol=1e-5 if precision == "fp32" else 2e-3,
    )
    assert fm.predict([]) == []


def test_pairs_are_required_for_pair_tasks_and_refused_otherwise(tiny_model_dir, tmp_path, sentiment_model):
    fm = load_finetuned(save_with_manifest(tiny_model_dir, tmp_path / "pairs", PAIRS))
    pairs = [("the film was great", "i liked it"), ("dull", "a wonderful and moving story")]
    got = fm.predict(pairs)
    logits = manual_logits(fm, [a for a, _ in pairs], [b for _, b in pairs])
    assert [r["label"] for r in got] == [fm.labels[k] for k in logits.argmax(-1)]
    (alone,) = fm.predict(pairs[0])  # one bare pair
    assert alone["label"] == got[0]["label"]
    assert alone["score"] == pytest.approx(got[0]["score"], abs=1e-5)
    with pytest.raises(DataError, match=r"pairs of texts \('premise', 'hypothesis'\)"):
        fm.predict(["a single text"])
    with pytest.raises(DataError, match=r"Input 1 .* expected a \(text_a, text_b\) pair"):
        fm.predict([("a", "b"), ("a", "b", "c")])
    with pytest.raises(DataError, match="classifies single texts"):
        load_finetuned(sentiment_model).predict(pairs)
    with pytest.raises(DataError, match="Input 1 is int"):
        load_finetuned(sentiment_model).predict(["fine", 3])


def test_regression_and_multi_label_outputs(tmp_path, cpu_kind):
    """The output shapes, on the default precision of either kind of CPU: fp32 figures to 1e-5,
    or (mixed, on a bf16 CPU) fp32's decisions with bf16-close values."""
    atol = MIXED_ATOL if cpu_kind else 1e-5
    reg = load_finetuned(build_tiny_modernbert(tmp_path / "reg", num_labels=1, problem_type="regression"))
    got = reg.predict(TEXTS[:3])
    # mixed records also say whether fp32 re-scored them
    assert all(set(r) == ({"score", "rescored"} if cpu_kind else {"score"}) for r in got)
    np.testing.assert_allclose([r["score"] for r in got], manual_logits(reg, TEXTS[:3])[:, 0], atol=atol)

    multi = load_finetuned(
        build_tiny_modernbert(tmp_path / "multi", num_labels=3, problem_type="multi_label_classification")
    )
    assert multi.precision == ("mixed" if cpu_kind else "fp32")
    got = multi.predict(TEXTS)
    sig = torch.sigmoid(torch.from_numpy(manual_logits(multi, TEXTS))).numpy()
    for row, probs in zip(got, sig, strict=True):
        assert row["labels"] == [multi.labels[k] for k in np.flatnonzero(probs > 0.5)]
        np.testing.assert_allclose(list(row["probabilities"].values()), probs, atol=atol)


# --- safety and clear errors -----------------------------------------------------------------
def _copy_without_weights(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors"))
    return dst


def test_pickle_only_folder_is_refused_unless_allowed(tiny_model_dir, tmp_path):
    folder = _copy_without_weights(tiny_model_dir, tmp_path / "bin")
    reference = load_finetuned(tiny_model_dir)
    torch.save(reference.model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"pytorch_model\.bin.*arbitrary code.*allow_pickle"):
        load_finetuned(folder)
    trusted = load_finetuned(folder, allow_pickle=True)
    assert trusted.predict(TEXTS) == reference.predict(TEXTS)


def test_config_pointing_at_pickle_weights_is_refused(tiny_model_dir, tmp_path):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["transformers_weights"] = "adapter_model.bin"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="adapter_model.bin.*not safetensors"):
        load_finetuned(folder)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupted_safetensors_is_a_model_load_error(tiny_model_dir, tmp_path, damage):
    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(b"\x00" * 64 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors' is damaged"):
        load_finetuned(folder)


def test_labels_disagreeing_with_config_are_refused(tiny_model_dir, tmp_path):
    folder = save_with_manifest(tiny_model_dir, tmp_path / "m", SENTIMENT)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "positive", "1": "negative"}  # swapped order
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ManifestError, match=r"\['negative', 'positive'\].*\['positive', 'negative'\]"):
        load_finetuned(folder)


def test_missing_and_incomplete_folders(tiny_model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_finetuned(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match="no weights"):
        load_finetuned(_copy_without_weights(tiny_model_dir, tmp_path / "noweights"))
    (tmp_path / "run" / "checkpoint-10").mkdir(parents=True)
    (tmp_path / "run" / "checkpoint-10" / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match=r"no config.json.*\['checkpoint-10'\]"):
        load_finetuned(tmp_path / "run")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_finetuned(tiny_model_dir / "config.json")


def test_base_model_without_trained_head_is_refused(tiny_model_dir, tmp_path):
    from transformers import AutoModel

    folder = _copy_without_weights(tiny_model_dir, tmp_path / "base")
    AutoModel.from_pretrained(tiny_model_dir).save_pretrained(folder)
    with pytest.raises(ModelLoadError, match="lack .* parameter.*random"):
        load_finetuned(folder)


def test_hub_id_offline_without_cache_says_to_pass_a_folder(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelLoadError,
        match=r"(?s)HF_HUB_OFFLINE=1 is set.*'modernbert-tasks-"
        r"tests/no-such-model': pass the folder fine_tune saved the model to",
    ):
        load_finetuned("modernbert-tasks-tests/no-such-model")


# --- evaluate --------------------------------------------------------------------------------
def test_evaluate_matches_predict_on_a_labelled_file(sentiment_model, sentiment_dir):
    fm = load_finetuned(sentiment_model, precision="fp32")  # evaluate's own precision
    rows = make_sentiment_rows(80, seed=2)  # the rows of validation.tsv
    results = fm.evaluate(sentiment_dir / "validation.tsv", batch_size=16)
    predicted = fm.predict([t for t, _ in rows])
    gold = [fm.labels[y] for _, y in rows]
    accuracy = np.mean([p["label"] == g for p, g in zip(predicted, gold, strict=True)])
    assert results["num_examples"] == 80
    assert results["accuracy"] == pytest.approx(accuracy)
    cm = np.array(results["confusion_matrix"])
    assert cm.sum() == 80 and np.trace(cm) / 80 == pytest.approx(accuracy)
    assert results["per_class"]["positive"]["support"] == sum(y for _, y in rows)
    assert results["per_class"]["positive"]["f1"] == pytest.approx(results["f1"])
    probs = np.array([p["probabilities"]["positive"] for p in predicted])
    y = np.array([y for _, y in rows])
    loss = -np.mean(np.log(np.where(y == 1, probs, 1 - probs)))
    assert results["loss"] == pytest.approx(loss, rel=1e-4)


def test_evaluate_accepts_lists_datasets_and_the_task_split(sentiment_model, sentiment_dir):
    import datasets

    fm = load_finetuned(sentiment_model)
    rows = make_sentiment_rows(80, seed=2)
    from_file = fm.evaluate(sentiment_dir / "validation.tsv")
    from_list = fm.evaluate(rows)
    from_ds = fm.evaluate(
        datasets.Dataset.from_dict({"sentence": [t for t, _ in rows], "label": [y for _, y in rows]})
    )
    from_split = fm.evaluate(data_dir=sentiment_dir, split="validation")
    for other in (from_list, from_ds, from_split):
        assert other["accuracy"] == from_file["accuracy"]
        assert other["confusion_matrix"] == from_file["confusion_matrix"]
    named = fm.evaluate([(t, fm.labels[y]) for t, y in rows])  # label names work too
    assert named["accuracy"] == from_file["accuracy"]


def test_evaluate_errors(sentiment_model, tiny_model_dir, tmp_path):
    fm = load_finetuned(sentiment_model)
    unlabelled = write_tsv(tmp_path / "u.tsv", [("fine",), ("bad",)], header=("sentence",))
    with pytest.raises(DataError, match="no label column 'label'"):
        fm.evaluate(unlabelled)
    with pytest.raises(DataError, match=r"item 0 .* expected \(text, label\)"):
        fm.evaluate(["just text"])
    with pytest.raises(DataError, match="'maybe' .* not among task 'sentiment-demo'"):
        fm.evaluate([("fine", "maybe")])
    with pytest.raises(Exception, match="no manifest.*data="):
        load_finetuned(tiny_model_dir).evaluate()


def test_plain_folder_evaluates_a_sentence_label_file(tiny_model_dir, sentiment_dir):
    results = load_finetuned(tiny_model_dir).evaluate(sentiment_dir / "test.tsv")
    assert results["num_examples"] == 80
    assert set(results["per_class"]) == {"LABEL_0", "LABEL_1"}


# --- precision and progress ------------------------------------------------------------------
def test_precision_auto_is_mixed_where_bf16_is_fast_and_fp32_elsewhere(sentiment_model, monkeypatch):
    monkeypatch.setattr(
        "modernbert_tasks.hardware.cpu_supports_bf16", lambda: (False, "CPU lacks AVX512-BF16/AMX")
    )
    assert load_finetuned(sentiment_model).precision == "fp32"
    with pytest.warns(RuntimeWarning, match="lacks AVX512-BF16"):
        assert load_finetuned(sentiment_model, precision="bf16").precision == "bf16"
    monkeypatch.setattr("modernbert_tasks.hardware.cpu_supports_bf16", lambda: (True, "CPU has amx_bf16"))
    assert load_finetuned(sentiment_model).precision == "mixed"
    assert load_finetuned(sentiment_model, precision="fp32").precision == "fp32"


def test_evaluate_is_fp32_on_every_cpu_unless_asked(sentiment_model, cpu_kind):
    """Its figures go into reports: the same on a bf16 CPU as on an AVX2 one, whatever predict
    picks; precision= trades that for speed on request."""
    rows = [(text, "positive" if label else "negative") for text, label in make_sentiment_rows(40, seed=5)]
    auto = load_finetuned(sentiment_model)
    assert auto.precision == ("mixed" if cpu_kind else "fp32")
    exact = load_finetuned(sentiment_model, precision="fp32").evaluate(rows)
    assert auto.evaluate(rows) == exact  # every figure, bit for bit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a CPU without native bf16 warns
        fast = auto.evaluate(rows, precision="mixed")
    assert fast["accuracy"] == exact["accuracy"]  # mixed keeps fp32's decisions
    assert fast["loss"] == pytest.approx(exact["loss"], abs=MIXED_ATOL)
    with pytest.raises(ConfigError, match="precision='auto' is not supported by evaluate"):
        auto.evaluate(rows, precision="auto")


@pytest.fixture(scope="module")
def fine_tuned_model(trained_sentiment):
    return trained_sentiment.model_path  # conftest's session run (read here, not changed)


@pytest.mark.parametrize("which", ["untrained head", "fine-tuned"])
def test_mixed_precision_gives_fp32_labels(which, sentiment_model, fine_tuned_model, request):
    """bf16, then fp32 for every close call: the labels are fp32's, on the hard case (an
    untrained head, where nearly every call is close) as on a trained model."""
    if which == "untrained head":
        # with the fallback tokenizer's 512 embeddings the untrained head makes no close call
        request.getfixturevalue("shared_tokenizer_dir")
    path = sentiment_model if which == "untrained head" else fine_tuned_model
    texts = [t for t, _ in make_sentiment_rows(300, seed=21)]
    fp32 = load_finetuned(path, precision="fp32").predict(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a CPU without native bf16 warns
        mixed = load_finetuned(path, precision="mixed")
    got = mixed.predict(texts)
    assert [r["label"] for r in got] == [r["label"] for r in fp32]
    rescored, total = mixed.last_rescored
    assert total == len(texts) and 0 <= rescored <= total
    assert sum(r["rescored"] for r in got) == rescored  # each record says whether it was redone
    if which == "fine-tuned":
        assert rescored < total / 2  # most calls are clear: bf16 stands for them
    else:
        assert rescored > 0  # a random head has close calls: they were redone in fp32


def test_bf16_predictions_stay_close_to_fp32(sentiment_model):
    fp32 = load_finetuned(sentiment_model, precision="fp32").predict(TEXTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a CPU without native bf16 warns
        bf16 = load_finetuned(sentiment_model, precision="bf16")
    assert bf16.precision == "bf16"
    got = bf16.predict(TEXTS)
    np.testing.assert_allclose(
        [r["probabilities"]["positive"] for r in got],
        [r["probabilities"]["positive"] for r in fp32],
        atol=0.05,
    )


def test_bf16_passes_run_a_copy_with_bf16_parameters(sentiment_model):
    import torch

    from modernbert_tasks.inference.batches import bf16_copy

    fm = load_finetuned(sentiment_model, precision="fp32")
    copy = bf16_copy(fm.model)
    assert {p.dtype for p in copy.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in fm.model.parameters()} == {torch.float32}  # the original is untouched
    buffers = dict(fm.model.named_buffers())
    assert all(torch.equal(b, buffers[name]) for name, b in copy.named_buffers())  # e.g. rotary
    # the bf16 copy is what precision="bf16" scores with: its logits, not autocast's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a CPU without native bf16 warns
        bf16 = load_finetuned(sentiment_model, precision="bf16")
    fm.model = copy  # the fp32 path, run on the copy: no autocast either
    expected = [r["probabilities"]["positive"] for r in fm.predict(TEXTS)]
    assert [r["probabilities"]["positive"] for r in bf16.predict(TEXTS)] == expected


def test_bad_arguments(sentiment_model):
    with pytest.raises(ConfigError, match="precision='half'"):
        load_finetuned(sentiment_model, precision="half")
    with pytest.raises(ConfigError, match="device='tpu:0'"):
        load_finetuned(sentiment_model, device="tpu:0")
    with pytest.raises(ConfigError, match="batch_size=0"):
        load_finetuned(sentiment_model).predict(["x"], batch_size=0)


def test_progress_bar_only_when_asked_or_long(sentiment_model, capsys):
    fm = load_finetuned(sentiment_model)
    capsys.readouterr()
    fm.predict(TEXTS)
    assert "predict" not in capsys.readouterr().err
    fm.predict(TEXTS, show_progress=True)
    assert "predict: 100%" in capsys.readouterr().err
