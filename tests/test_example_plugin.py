"""The example plugin package (examples/modernbert-tasks-pairs), installed with pip as a user
would, then found through its entry point, listed, loaded and fine-tuned.

.ci/run installs it; without it these tests skip with the install command. Its task names all
start with ``pairs-`` so they cannot collide with the built-in ``sst2``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import modernbert_tasks
from modernbert_tasks.plugins import registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "modernbert-tasks-pairs"
DIST = "modernbert-tasks-pairs"
PACKAGE = "modernbert_tasks_pairs"
GROUP, PLUGIN, MODULE = "modernbert_tasks", "pairs", f"{PACKAGE}.plugin"  # its entry point
TASKS = {"pairs-paraphrase", "pairs-nli", "pairs-sts"}
# a developer's shell may set these; the tests need every plugin loaded, leniently
PLUGIN_ENV = ("MODERNBERT_TASKS_STRICT_PLUGINS", "MODERNBERT_TASKS_DISABLE_PLUGINS")


def _run(*command: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def _source_files() -> dict[str, bytes]:
    root = EXAMPLE / "src"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in (root / PACKAGE).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _installed_matches_source() -> bool:
    """True when the installed distribution holds exactly the example's current files."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        return False
    installed = {
        f.as_posix(): f for f in dist.files or () if f.parts[0] == PACKAGE and "__pycache__" not in f.parts
    }
    version = re.search(r'^version = "(.+)"', (EXAMPLE / "pyproject.toml").read_text(), re.M)
    entry_points = {(ep.group, ep.name, ep.value) for ep in dist.entry_points}
    if dist.version != version[1] or entry_points != {(GROUP, PLUGIN, MODULE)}:
        return False
    source = _source_files()
    return installed.keys() == source.keys() and all(
        Path(dist.locate_file(installed[name])).read_bytes() == data for name, data in source.items()
    )


@pytest.fixture(scope="session")
def installed_plugin() -> metadata.Distribution:
    """The example as pip installed it. The suite never installs it itself: testing must not
    change the user's environment (.ci/run installs it before running the tests)."""
    if not _installed_matches_source():
        pytest.skip(
            f"the example plugin is not installed (or is out of date); run "
            f"`pip install --no-deps --no-build-isolation ./examples/{EXAMPLE.name}` "
            f"to include these tests (.ci/run does)"
        )
    registry.reset()  # discover the plugins again, whatever earlier tests did to the registry
    return metadata.distribution(DIST)


@pytest.fixture
def clean_registry(monkeypatch):
    """Isolation for tests that touch the shared registry: rediscover afterwards."""
    for var in PLUGIN_ENV:
        monkeypatch.delenv(var, raising=False)
    registry.reset()
    yield registry
    registry.reset()


# --- installed through pip ------------------------------------------------------------------
def test_wheel_ships_the_data_files(installed_plugin):
    shipped = {f.as_posix() for f in installed_plugin.files or ()}
    for name, ext in [("pairs-paraphrase", "tsv"), ("pairs-nli", "jsonl"), ("pairs-sts", "csv")]:
        for split in ("train", "validation"):
            assert f"{PACKAGE}/data/{name}/{split}.{ext}" in shipped
    assert installed_plugin.entry_points.select(group=GROUP, name=PLUGIN)


def test_installed_plugin_is_discovered(installed_plugin, clean_registry):
    rows = {r["name"]: r for r in modernbert_tasks.list_tasks()}
    assert TASKS <= rows.keys() and "sst2" in rows
    for name in TASKS:
        assert rows[name]["plugin"] == PLUGIN
        assert rows[name]["plugin_version"] == installed_plugin.version == "1.0.0"
        assert len(rows[name]["text_columns"]) == 2
    assert rows["pairs-sts"]["problem_type"] == "regression"
    assert rows["pairs-nli"]["labels"] == ["entailment", "neutral", "contradiction"]
    plugins = {p["name"]: p for p in modernbert_tasks.list_plugins()}
    assert plugins[PLUGIN]["distribution"] == DIST and plugins[PLUGIN]["error"] is None
    assert set(plugins[PLUGIN]["tasks"]) == TASKS


def test_fresh_process_lists_the_plugin_tasks(installed_plugin):
    """Entry-point discovery as a new interpreter sees it (nothing cached in this process)."""
    code = "import json, modernbert_tasks as m; print(json.dumps(m.list_tasks()))"
    proc = _run(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert TASKS <= rows.keys()
    assert {(rows[n]["plugin"], rows[n]["plugin_version"]) for n in TASKS} == {(PLUGIN, "1.0.0")}


# CLI check: enabled because the src/modernbert_tasks/cli/ package exists (its `tasks --json`
# prints list_tasks()); the console script is the one pip put next to this interpreter.
@pytest.mark.skipif(
    not (Path(modernbert_tasks.__file__).parent / "cli" / "__init__.py").is_file(),
    reason="the CLI (modernbert_tasks/cli/) is not written yet",
)
def test_cli_lists_the_plugin_tasks(installed_plugin):
    script = shutil.which("modernbert-tasks", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "modernbert_tasks"]
    proc = _run(*command, "tasks", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert TASKS <= rows.keys() and "sst2" in rows
    assert {(rows[n]["plugin"], rows[n]["plugin_version"]) for n in TASKS} == {(PLUGIN, "1.0.0")}


def test_shipped_data_load_without_data_dir(installed_plugin, clean_registry):
    """One task per format (TSV ids, JSONL label names, CSV floats), found with no data_dir."""
    paraphrase = modernbert_tasks.get_task("pairs-paraphrase").load_dataset()
    nli = modernbert_tasks.get_task("pairs-nli").load_dataset()
    sts = modernbert_tasks.get_task("pairs-sts").load_dataset()
    for dd in (paraphrase, nli, sts):
        assert set(dd) == {"train", "eval"}
        assert (len(dd["train"]), len(dd["eval"])) == (480, 120)
    assert paraphrase["train"].column_names == ["sentence1", "sentence2", "label"]
    assert set(paraphrase["train"]["label"]) == {0, 1}
    assert nli["eval"].column_names == ["premise", "hypothesis", "label"]
    assert set(nli["train"]["label"]) == {0, 1, 2}  # encoded from the names in the file
    scores = sts["train"]["label"]
    assert all(isinstance(s, float) and 0.0 <= s <= 5.0 for s in scores)
    assert min(scores) == 0.0 and max(scores) == 5.0


def test_data_dir_still_wins_over_shipped_data(installed_plugin, clean_registry, tmp_path):
    (tmp_path / "train.jsonl").write_text(
        '{"premise": "a man is asleep .", "hypothesis": "a man is awake .", "label": "contradiction"}\n',
        encoding="utf-8",
    )
    dd = modernbert_tasks.get_task("pairs-nli").load_dataset(data_dir=str(tmp_path))
    assert set(dd) == {"train"} and dd["train"]["label"] == [2]


def test_fine_tune_installed_task_learns(
    installed_plugin, clean_registry, tiny_model_dir, tmp_path, shared_tokenizer_dir
):
    """pairs-nli end to end through the public API: 3 labels, text pairs, JSONL data."""
    # (skipped without ../shared: the fallback tokenizer splits the hypotheses into byte pieces)
    # evaluate (and checkpoint) once per epoch rather than 10 times; fp32 is the quicker
    # precision for a model this small on CPU
    result = modernbert_tasks.fine_tune(
        "pairs-nli",
        model_name=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        learning_rate=1e-3,
        num_train_epochs=3,
        per_device_train_batch_size=16,
        eval_strategy="epoch",
        report_to=[],
        seed=0,
        max_length=48,
        precision="fp32",
    )
    # chance is 1/3; the hypotheses' wording gives the label away to a model that learned it
    assert result.metrics["macro_f1"] > 0.7, result.metrics
    assert result.metrics["accuracy"] > 0.7, result.metrics
    config = json.loads((Path(result.model_path) / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == ["entailment", "neutral", "contradiction"]

    # the saved model (no plugin code needed to load it) predicts pairs as evaluation scored them
    model = modernbert_tasks.load_finetuned(result.model_path, device="cpu")
    eval_split = modernbert_tasks.get_task("pairs-nli").load_dataset()["eval"]
    predicted = model.predict(list(zip(eval_split["premise"], eval_split["hypothesis"], strict=True)))
    names = [model.labels[i] for i in eval_split["label"]]
    accuracy = sum(p["label"] == n for p, n in zip(predicted, names, strict=True)) / len(names)
    assert accuracy == pytest.approx(result.metrics["accuracy"], abs=0.02)
    # with the plugin installed, its own load_dataset (shipped data) serves evaluate()
    assert isinstance(model.task, type(modernbert_tasks.get_task("pairs-nli")))
    scores = model.evaluate()
    assert scores["num_examples"] == len(eval_split)
    assert scores["accuracy"] == pytest.approx(accuracy, abs=1e-9)


# --- registered in-process, not installed ---------------------------------------------------
@pytest.fixture
def source_modules():
    """Import the example from its source folder, then put sys.modules back as it was."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == PACKAGE}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(EXAMPLE / "src"))
    try:
        yield importlib.import_module(f"{PACKAGE}.plugin")
    finally:
        sys.path.remove(str(EXAMPLE / "src"))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_register_plugin_in_process_without_installing(source_modules, clean_registry, monkeypatch):
    """How a plugin author tests an unpublished plugin: register the module object."""
    assert Path(source_modules.__file__).is_relative_to(EXAMPLE)  # the source, not site-packages
    # An installed copy would register the same task names (DuplicateTaskError): skip it.
    monkeypatch.setenv("MODERNBERT_TASKS_DISABLE_PLUGINS", PLUGIN)
    assert not TASKS & {r["name"] for r in modernbert_tasks.list_tasks()}

    modernbert_tasks.register_plugin(source_modules, name="pairs-dev")
    try:
        rows = {r["name"]: r for r in modernbert_tasks.list_tasks()}
        assert TASKS <= rows.keys() and "sst2" in rows
        assert {rows[n]["plugin"] for n in TASKS} == {"pairs-dev"}
        nli = modernbert_tasks.get_task("pairs-nli")
        assert nli.num_labels == 3 and nli.is_pair and nli.main_metric == "macro_f1"
    finally:
        registry.unregister_plugin("pairs-dev")
    assert not TASKS & {r["name"] for r in modernbert_tasks.list_tasks()}
