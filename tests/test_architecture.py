"""The structure docs/architecture.md promises: every module listed with its job, imports that
point one way (scripts/check_imports.py), and the dependencies declared that the code imports."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "modernbert_tasks"


def _check_imports():
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / "scripts" / "check_imports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_module_is_in_the_architecture_map():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s+([a-z0-9_]+(?:\.py|/))", doc, re.M))
    modules = [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent == PACKAGE]
    missing = sorted(str(p.relative_to(PACKAGE)) for p in modules if p.name not in listed)
    assert not missing, f"modules missing from docs/architecture.md: {missing}"
    # and every package folder is there too
    packages = {f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= listed


def test_imports_point_one_way_and_dependencies_are_declared(capsys):
    check = _check_imports()
    assert check.main([]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "0 import circle(s), 0 import(s) against the layers, 0 private name(s)" in out


def test_the_checker_sees_a_circle_and_an_upward_import():
    check = _check_imports()
    graph = {
        "modernbert_tasks.a": {"modernbert_tasks.b"},
        "modernbert_tasks.b": {"modernbert_tasks.a"},
        "modernbert_tasks.artifacts.x": {"modernbert_tasks.inference.y"},
        "modernbert_tasks.inference.y": set(),
        "modernbert_tasks.training.z": {"modernbert_tasks.inference.y"},
    }
    assert check.cycles(graph) == [["modernbert_tasks.a", "modernbert_tasks.b"]]
    problems = check.layer_problems(graph)
    assert any("artifacts.x imports modernbert_tasks.inference.y" in p for p in problems)
    assert any("training.z imports modernbert_tasks.inference.y" in p for p in problems)
