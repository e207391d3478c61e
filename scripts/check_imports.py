"""The package's imports, checked: no import circles, imports only downwards through the
layers (core < artifacts/ < inference/ | training/ < exporters/ | auditing/ | serving/ < cli/
< testing.py; see docs/architecture.md), no private names across modules, and the declared dependencies match
the imports (each declared one imported, each import declared).

Every import counts, at module level, inside functions and under `if TYPE_CHECKING:` alike:
the rule is that dependencies point one way, not only that Python happens to load. A private
name is one that starts with "_" (dunders excepted), imported from another module of the package
(`from .x import _y`) or read off one (`x._y`).

    python scripts/check_imports.py          # exit 1 and a list when a rule is broken
    python scripts/check_imports.py --graph  # also print every module's imports
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

PACKAGE = "modernbert_tasks"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module a (possibly relative) `from ... import` names."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def scan(modules: set[str]) -> tuple[dict[str, set[str]], list[str]]:
    """({module: the package modules it imports}, private-name findings)."""
    graph: dict[str, set[str]] = {}
    private: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        deps: set[str] = set()
        aliases: dict[str, str] = {}  # local name -> package module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(PACKAGE):
                        deps.add(alias.name)
                        aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.ImportFrom):
                source = resolve(name, is_package, node.level, node.module)
                if not source.startswith(PACKAGE):
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in modules:  # `from . import calibration`: the module itself
                        deps.add(sub)
                        aliases[alias.asname or alias.name] = sub
                    else:
                        deps.add(source)
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            private.append(f"{name}: from {source} import {alias.name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                private.append(f"{name}: {aliases[node.value.id]}.{node.attr}")
        # importing a submodule runs the package's __init__ anyway: edges to it say nothing
        graph[name] = {d for d in deps if d in modules and d not in (name, PACKAGE)}
    return graph, private


# The dependency rule: a module imports only from its own layer or the ones below, and the two
# layer-2 packages never import each other. The package's __init__/__main__ sit above all.
LAYERS = {
    "artifacts": 1,
    "inference": 2,
    "training": 2,
    "exporters": 3,
    "auditing": 3,
    "serving": 3,
    "cli": 4,
    "testing": 5,
}


def layer(module: str) -> tuple[int, str]:
    """(rank, package): the light core (top-level modules and tasks/) is 0."""
    parts = module.split(".")
    package = parts[1] if len(parts) > 1 and parts[1] in LAYERS else ""  # testing.py: test fixtures, atop
    return LAYERS.get(package, 0), package


def layer_problems(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, deps in sorted(graph.items()):
        if module in (PACKAGE, f"{PACKAGE}.__main__"):
            continue
        rank, package = layer(module)
        for dep in sorted(deps):
            dep_rank, dep_package = layer(dep)
            if dep_rank > rank or (dep_rank == rank and rank > 0 and dep_package != package):
                found.append(f"{module} imports {dep}, a layer above or beside it")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# declared and needed, though no module of ours imports them
NOT_IMPORTED = {"tensorboard": "the Trainer's TensorBoard logging (report_to's default)"}
# imported, and declared in pyproject.toml's extras rather than the core dependencies
STDLIB = set(sys.stdlib_module_names)


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].strip().lower().replace("_", "-")


def dependency_problems() -> list[str]:
    """Declared distributions never imported, and imported top-level modules never declared
    (in the core dependencies or an extra)."""
    from importlib import metadata

    import tomllib

    pyproject = tomllib.loads((ROOT.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    core = {_requirement_name(d) for d in project["dependencies"]}
    extras = {
        _requirement_name(d) for group in project.get("optional-dependencies", {}).values() for d in group
    }
    imported: set[str] = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    imported -= STDLIB | {PACKAGE}
    owners = metadata.packages_distributions()
    found = []
    used: set[str] = set()
    for module in sorted(imported):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        used |= dists
        if not dists & (core | extras):
            found.append(f"{module!r} is imported but no dependency or extra declares it")
    for dist in sorted(core - used - set(NOT_IMPORTED)):
        found.append(f"{dist!r} is a declared dependency that no module imports")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", action="store_true", help="print every module's imports")
    args = parser.parse_args(argv)
    modules = {module_name(p) for p in ROOT.rglob("*.py")}
    graph, private = scan(modules)
    if args.graph:
        for name in sorted(graph):
            print(f"{name} -> {', '.join(sorted(graph[name])) or '(nothing)'}")
    circles = cycles(graph)
    for component in circles:
        print("import circle: " + " <-> ".join(component))
    for line in private:
        print("private name across modules: " + line)
    layers = layer_problems(graph)
    for line in layers:
        print("dependency rule: " + line)
    deps = dependency_problems()
    for line in deps:
        print("dependencies: " + line)
    print(
        f"{len(modules)} modules, {sum(map(len, graph.values()))} imports, "
        f"{len(circles)} import circle(s), {len(layers)} import(s) against the layers, "
        f"{len(private)} private name(s) across modules, {len(deps)} dependency problem(s)"
    )
    return 1 if circles or layers or private or deps else 0


if __name__ == "__main__":
    sys.exit(main())
