"""The plugin registry: in-process plugins, real entry-point discovery, and failure isolation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import pytest

import modernbert_tasks as mt
from modernbert_tasks import Task, hookimpl
from modernbert_tasks.errors import (
    DuplicateTaskError,
    PluginLoadError,
    TaskDefinitionError,
    UnknownTaskError,
)
from modernbert_tasks.plugins import PluginWarning, registry


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    for var in ("MODERNBERT_TASKS_STRICT_PLUGINS", "MODERNBERT_TASKS_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    with registry.isolated():
        yield


def _plugin_module(name: str, *task_names: str) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def register_tasks(register):
        for task_name in task_names:
            register(Task(name=task_name, labels=("no", "yes"), description=f"from {name}"))

    module.register_tasks = register_tasks
    return module


def test_in_process_plugin_is_listed_with_its_source():
    mt.register_plugin(_plugin_module("myplug", "toy-a", "toy-b"), name="myplug")
    rows = {row["name"]: row for row in mt.list_tasks()}
    assert {"sst2", "toy-a", "toy-b"} <= set(rows)
    assert rows["toy-a"]["plugin"] == "myplug"
    assert rows["sst2"]["plugin"] == "builtin"
    assert mt.get_task("toy-b").description == "from myplug"
    plugins = {p["name"]: p for p in mt.list_plugins()}
    assert plugins["myplug"]["tasks"] == ["toy-a", "toy-b"]
    assert plugins["myplug"]["error"] is None


def test_unknown_task_suggests_close_names_and_lists_available():
    with pytest.raises(UnknownTaskError) as err:
        mt.get_task("sst-2")
    message = str(err.value)
    assert "'sst-2'" in message and "Did you mean: sst2?" in message
    # other installed plugins (e.g. the example in examples/) may list more tasks
    assert "sst2" in message.split("Available tasks: ")[1].split(". ")[0].split(", ")


def test_hook_that_raises_is_skipped_and_others_keep_working():
    broken = types.ModuleType("broken")

    @hookimpl
    def register_tasks(register):
        register(Task(name="half-done", labels=("a", "b")))
        raise RuntimeError("database unreachable")

    broken.register_tasks = register_tasks
    mt.register_plugin(broken, name="broken")
    mt.register_plugin(_plugin_module("good", "good-task"), name="good")
    with pytest.warns(PluginWarning, match="database unreachable"):
        names = {row["name"] for row in mt.list_tasks()}
    assert "good-task" in names and "sst2" in names
    assert "half-done" not in names  # a failing hook contributes nothing
    info = {p["name"]: p for p in mt.list_plugins()}["broken"]
    assert "RuntimeError: database unreachable" in info["error"]


def test_malformed_task_is_reported_not_fatal():
    bad = types.ModuleType("bad")

    @hookimpl
    def register_tasks(register):
        register({"name": "not-a-task"})

    bad.register_tasks = register_tasks
    mt.register_plugin(bad, name="bad")
    with pytest.warns(PluginWarning, match="expects a modernbert_tasks.Task"):
        names = [row["name"] for row in mt.list_tasks()]
    assert "sst2" in names and "not-a-task" not in names


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("MODERNBERT_TASKS_STRICT_PLUGINS", "1")
    broken = types.ModuleType("broken")

    @hookimpl
    def register_tasks(register):
        raise ValueError("boom")

    broken.register_tasks = register_tasks
    mt.register_plugin(broken, name="broken")
    with pytest.raises(PluginLoadError, match="boom"):
        mt.list_tasks()


def test_duplicate_in_process_names_both_sources():
    mt.register_plugin(_plugin_module("first", "same"), name="first")
    mt.register_plugin(_plugin_module("second", "same"), name="second")
    with pytest.raises(DuplicateTaskError) as err:
        mt.list_tasks()
    assert "'first'" in str(err.value) and "'second'" in str(err.value)


def test_task_validation_names_the_bad_field():
    with pytest.raises(TaskDefinitionError, match="'name'"):
        Task(name="Bad Name", labels=("a", "b"))
    with pytest.raises(TaskDefinitionError, match="'labels'"):
        Task(name="ok", labels=())
    with pytest.raises(TaskDefinitionError, match="'problem_type'.*regression"):
        Task(name="ok", labels=("a", "b"), problem_type="regresion")
    with pytest.raises(TaskDefinitionError, match="'labels'"):
        Task(name="ok", labels=("a", "b"), problem_type="regression")
    with pytest.raises(TaskDefinitionError, match="'main_metric'"):
        Task(name="ok", labels=("a", "b"), main_metric="f1")
    with pytest.raises(TaskDefinitionError, match="'metrics'.*Did you mean: accuracy"):
        Task(name="ok", labels=("a", "b"), metrics=("acuracy",), main_metric="acuracy")
    with pytest.raises(TaskDefinitionError, match="'text_columns'"):
        Task(name="ok", labels=("a", "b"), text_columns=("a", "b", "c"))
    task = Task(name="pairs", labels=("a", "b"), text_columns=["s1", "s2"])
    assert task.is_pair and task.text_columns == ("s1", "s2")
    with pytest.raises(TypeError):
        task.hyperparameters["learning_rate"] = 1.0  # frozen all the way down


# --- discovery through real entry points ----------------------------------------------------
def _write_dist(site, dist: str, ep_name: str, module: str, source: str) -> None:
    """A minimal installed distribution: <dist>.dist-info with entry_points.txt, plus a module."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[modernbert_tasks]\n{ep_name} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


GOOD = """
    from modernbert_tasks import Task, hookimpl

    @hookimpl
    def register_tasks(register):
        register(Task(name="{task}", labels=("neg", "pos"), version="2.0.0"))
"""


def _discover(site, code: str, **env) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with `site` on sys.path, as an installed plugin is."""
    import os

    full_env = {**os.environ, "PYTHONPATH": str(site), **env}
    for var in ("MODERNBERT_TASKS_STRICT_PLUGINS", "MODERNBERT_TASKS_DISABLE_PLUGINS"):
        if var not in env:
            full_env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120
    )


LIST = (
    "import json, modernbert_tasks as m; "
    "print(json.dumps({'tasks': m.list_tasks(), 'plugins': m.list_plugins()}))"
)


def test_entry_point_discovery_good_broken_and_duplicate(tmp_path):
    import json

    _write_dist(tmp_path, "modernbert-tasks-good", "good", "mt_good", GOOD.format(task="good-task"))
    _write_dist(
        tmp_path, "modernbert-tasks-broken", "broken", "mt_broken", "import a_module_that_does_not_exist\n"
    )
    out = _discover(tmp_path, LIST)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    tasks = {t["name"]: t for t in data["tasks"]}
    assert tasks["good-task"]["plugin"] == "good"
    assert tasks["good-task"]["plugin_version"] == "1.2.3"
    assert tasks["good-task"]["version"] == "2.0.0"
    assert "sst2" in tasks
    plugins = {p["name"]: p for p in data["plugins"]}
    assert plugins["broken"]["tasks"] == []
    assert "No module named 'a_module_that_does_not_exist'" in plugins["broken"]["error"]
    assert plugins["good"]["distribution"] == "modernbert-tasks-good"
    assert "plugin 'broken'" in out.stderr and "skipped" in out.stderr  # the warning

    # strict mode turns the broken plugin into an error
    strict = _discover(tmp_path, LIST, MODERNBERT_TASKS_STRICT_PLUGINS="1")
    assert strict.returncode != 0 and "PluginLoadError" in strict.stderr

    # disabling third-party plugins keeps the built-ins
    off = _discover(tmp_path, LIST, MODERNBERT_TASKS_DISABLE_PLUGINS="1")
    assert [t["name"] for t in json.loads(off.stdout)["tasks"]] == ["sst2"]
    one_off = _discover(tmp_path, LIST, MODERNBERT_TASKS_DISABLE_PLUGINS="broken")
    assert "broken" not in {p["name"] for p in json.loads(one_off.stdout)["plugins"]}

    # a second distribution registering the same task name raises, naming both
    _write_dist(tmp_path, "modernbert-tasks-clone", "clone", "mt_clone", GOOD.format(task="good-task"))
    dup = _discover(tmp_path, LIST)
    assert dup.returncode != 0
    assert "DuplicateTaskError" in dup.stderr
    assert "'good'" in dup.stderr and "'clone'" in dup.stderr


ABANDONED_IMPORT = """
import importlib, sys, threading, time
sys.path.insert(0, sys.argv[1])
worker = threading.Thread(target=importlib.import_module, args=("mt_slow",), daemon=True)
worker.start()
worker.join(0.5)  # what a thread-based import time-out did: give up waiting...
assert worker.is_alive()
start = time.monotonic()
importlib.import_module("mt_slow")  # ...but the module's import lock is still held
print(round(time.monotonic() - start, 1))
"""


def test_an_import_time_out_in_a_thread_cannot_protect_the_program(tmp_path):
    """Why there is no plugin import time-out: after giving up on an import in a thread, the
    next import of that module waits for the abandoned one to finish anyway."""
    (tmp_path / "mt_slow.py").write_text("import time\ntime.sleep(4)\n")
    out = subprocess.run(
        [sys.executable, "-c", ABANDONED_IMPORT, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) >= 2.5  # blocked for the rest of the 4 s sleep, not returned at once


def test_a_plugin_hanging_at_import_can_be_skipped_by_name(tmp_path):
    import json

    _write_dist(tmp_path, "modernbert-tasks-slow", "slow", "mt_slow", "import time\ntime.sleep(600)\n")
    out = _discover(tmp_path, LIST, MODERNBERT_TASKS_DISABLE_PLUGINS="slow")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "sst2" in {t["name"] for t in data["tasks"]}
    assert "slow" not in {p["name"] for p in data["plugins"]}  # never imported


def test_import_is_light():
    code = (
        "import sys, modernbert_tasks as m; m.list_tasks(); "
        "print(sorted(k for k in ('torch', 'transformers', 'datasets') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
