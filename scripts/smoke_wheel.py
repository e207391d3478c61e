"""Smoke test of the package as users get it: run with the interpreter of a clean venv that
has only the built wheel installed (see .ci/run), from a folder outside the source tree.

Checks: the import comes from site-packages; py.typed and the pytest plugin are shipped; the
console script lists sst2 through the entry point; a tiny fine-tune, load and predict work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path


def main() -> int:
    import modernbert_tasks
    from modernbert_tasks.testing import build_tiny_modernbert, make_sentiment_rows, write_tsv

    package = Path(modernbert_tasks.__file__).parent
    assert "site-packages" in package.parts, f"imported from {package}, not the installed wheel"
    assert (package / "py.typed").is_file(), "py.typed is not in the wheel"
    dist = metadata.distribution("modernbert-tasks")
    groups = {(ep.group, ep.name) for ep in dist.entry_points}
    assert ("modernbert_tasks", "builtin") in groups and ("pytest11", "modernbert_tasks") in groups
    assert ("console_scripts", "modernbert-tasks") in groups

    script = shutil.which("modernbert-tasks", path=str(Path(sys.executable).parent))
    listed = subprocess.run([script, "tasks", "--json"], capture_output=True, text=True, check=True)
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert "sst2" in names, names

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_modernbert(root / "tiny")
        data = root / "data"
        data.mkdir()
        write_tsv(data / "train.tsv", make_sentiment_rows(256, seed=1))
        write_tsv(data / "validation.tsv", make_sentiment_rows(64, seed=2))
        result = modernbert_tasks.fine_tune(
            "sst2",
            model_name=model,
            data_dir=data,
            output_dir=root / "run",
            learning_rate=1e-3,
            num_train_epochs=3,
            report_to="none",
            disable_tqdm=True,
        )
        loaded = modernbert_tasks.load_finetuned(result.model_path)
        (good, bad) = loaded.predict(["what a wonderful film", "the plot was dull and tedious"])
        assert result.metrics["accuracy"] >= 0.8, result.metrics
        assert (good["label"], bad["label"]) == ("positive", "negative"), (good, bad)
    print(
        f"wheel smoke test passed: {dist.version} from {package}; tasks {sorted(names)}; "
        f"accuracy {result.metrics['accuracy']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
