"""bench/serve_load.py end to end on the tiny model and a few sentences: it starts the
server, drives it from its own client process, and prints the table with the ratio to
in-process predict, the CPU split and the server's RSS over time."""

from __future__ import annotations

import pytest
from test_bench_smoke import check_table, run_script, tables


@pytest.mark.slow
def test_serve_load_table(tiny_model_dir, tmp_path):
    texts = tmp_path / "texts.tsv"
    texts.write_text(
        "sentence\tlabel\n" + "".join(f"a {'very ' * (i % 7)}good film number {i}\t1\n" for i in range(40))
    )
    out = run_script(
        "bench/serve_load.py",
        "--model", str(tiny_model_dir), "--texts", str(texts),
        "--clients", "4", "--seconds", "2", "--batch-workers", "1", "2", "--rss-every", "1",
        env={"MODERNBERT_TASKS_SHARED": str(tmp_path)},  # --texts: no ../shared needed
        timeout=300,
    )  # fmt: skip
    (table,) = tables(out)
    assert [r["configuration"] for r in table] == [
        "in-process predict (batch_size=64)",
        "serve, 4 clients (raw), batch workers 1",
        "serve, 4 clients (raw), batch workers 2",
    ]
    check_table(table, ["texts/s"], ratio="ratio")
    for row in table[1:]:
        assert row["errors"] == "0" and row["dropped"] == "0"
        for column in ("p50 ms", "p99 ms", "mean group", "loop ms/req", "model ms/req", "client ms/req"):
            assert float(row[column].replace(",", "")) > 0, (column, row)
    assert "RSS MiB over time" in out and "cores busy" in out
    assert "cpu capability:" in out


@pytest.mark.slow
def test_serve_memory_phases(tiny_model_dir, tmp_path):
    texts = tmp_path / "texts.tsv"
    texts.write_text(
        "sentence\tlabel\n" + "".join(f"a {'very ' * (i % 9)}good film number {i}\t1\n" for i in range(40))
    )
    out = run_script(
        "bench/serve_memory.py",
        "--model", str(tiny_model_dir), "--texts", str(texts),
        "--groups", "12", "--every", "4", "--group-size", "2", "8", "--warmup-length", "8",
        env={"MODERNBERT_TASKS_SHARED": str(tmp_path)},
        timeout=300,
    )  # fmt: skip
    assert "cpu capability:" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["new"], ["replay"], ["fresh"])]
    assert [(r[0], int(r[1])) for r in rows] == [
        (phase, n) for phase in ("new", "replay", "fresh") for n in (4, 8, 12)
    ]
    shapes = {(r[0], int(r[1])): int(r[2]) for r in rows}
    assert shapes[("new", 12)] > shapes[("new", 4)] > 1  # the warm-up's shape, then the groups'
    # the same groups again: no new forward-pass shape
    assert shapes[("replay", 4)] == shapes[("replay", 12)] == shapes[("new", 12)]
    assert shapes[("fresh", 12)] >= shapes[("replay", 12)]
    assert all(float(r[3]) > 0 for r in rows)  # RSS MiB
