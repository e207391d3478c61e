"""The docs match the code: generated pages are current, the public API and the plugin hook are
documented, links resolve, and every command line shown in the docs parses."""

from __future__ import annotations

import importlib.util
import inspect
import re
import shlex
from pathlib import Path

import pytest

import modernbert_tasks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
TEST_COMMAND = "python -m pytest -q"


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_configuration", ROOT / "scripts" / "gen_configuration.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_page_is_generated_from_the_current_code():
    generator = _load_generator()
    expected = generator.render()
    assert _text(DOCS / "configuration.md") == expected, (
        "docs/configuration.md is out of date: run `python scripts/gen_configuration.py`"
    )
    # and it really lists the options: one from each source
    for needle in (
        "| `max_train_samples` |",
        "| `warmup_steps` |",
        "| `learning_rate` |",
        "| `evaluation_strategy` |",
    ):
        assert needle in expected


@pytest.mark.parametrize("name", modernbert_tasks.__all__)
def test_public_name_is_documented_and_has_a_docstring(name):
    obj = getattr(modernbert_tasks, name)
    assert (inspect.getdoc(obj) or "").strip(), f"modernbert_tasks.{name} has no docstring"
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    assert any(pattern.search(_text(page)) for page in PAGES), (
        f"modernbert_tasks.{name} is not mentioned in README.md or docs/"
    )


def test_the_plugin_hook_is_documented():
    page = DOCS / "writing-a-task-plugin.md"
    assert page.is_file(), "docs/writing-a-task-plugin.md is missing"
    assert "register_tasks" in _text(page)


def test_readme_test_command_is_the_one_ci_runs():
    ci_lines = [line.strip() for line in _text(ROOT / ".ci" / "run").splitlines()]
    assert TEST_COMMAND in ci_lines
    readme = _text(README)
    assert f"```bash\n{TEST_COMMAND}\n```" in readme
    assert "pip install torch==2.13.0 && pip install -e '.[dev]' && modernbert-tasks train sst2" in readme


def test_recipe_page_maps_eight_steps_and_names_the_broken_apis():
    recipe = _text(DOCS / "recipe.md")
    assert "```mermaid" in recipe
    steps = re.findall(r"^\| ([1-8]) \|", recipe, re.M)
    assert steps == [str(i) for i in range(1, 9)]
    for broken in (
        "evaluation_strategy",
        "eval_strategy",
        "datasets.load_metric",
        'evaluate.load("accuracy")',
    ):
        assert broken in recipe


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _links(page: Path):
    for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
        if not re.match(r"^[a-z]+://", target):
            yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in _links(page):
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name}: link to {target!r}, which does not exist"
        if anchor and path.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", _text(path), re.M)
            assert anchor in {_slug(h) for h in headings}, (
                f"{page.name}: link to {target!r}, but {path.name} has no such heading"
            )


def _shell_lines(text: str):
    """Lines of the shell code blocks in Markdown, continuation lines joined."""
    # every fenced block, so a closing fence is never taken for an opening one
    for lang, block in re.findall(r"^ *```(\w*)\n(.*?)^ *```", text, re.S | re.M):
        if lang in ("bash", "console", "sh", ""):
            yield from block.replace("\\\n", " ").splitlines()


def _command_lines():
    """(source, line, argv) for every CLI invocation in the docs and in the `--help` examples."""
    from modernbert_tasks import cli

    sources = [(page.name, _shell_lines(_text(page))) for page in PAGES]
    sources += [
        (f"cli.{name}", getattr(cli, name).replace("\\\n", " ").splitlines())
        for name in dir(cli)
        if name.endswith("_EPILOG")
    ]
    for source, lines in sources:
        for line in lines:
            found = re.search(r"(?:^|[\s$])(?:modernbert-tasks|-m modernbert_tasks)\s+(.*)", line)
            if found:
                argv = shlex.split(found.group(1).split(" | ")[0], comments=True)
                yield source, line.strip(), argv


COMMAND_LINES = list(_command_lines())


def test_the_docs_show_command_lines():
    commands = {argv[0] for _, _, argv in COMMAND_LINES if argv}
    assert {"train", "evaluate", "predict", "tasks", "options"} <= commands


@pytest.mark.parametrize(
    "page,line,argv", COMMAND_LINES, ids=[f"{p}:{' '.join(a)[:40]}" for p, _, a in COMMAND_LINES]
)
def test_command_lines_in_the_docs_parse(page, line, argv):
    from modernbert_tasks.cli import build_parser

    parser = build_parser(argv[0] if argv else None)
    try:
        _, extras = parser.parse_known_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{page}: `{line}` does not parse (exit {exc.code})")
    assert not extras, f"{page}: `{line}` has unknown arguments {extras}"
