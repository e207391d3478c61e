"""What a server group costs the model, by how the group is run (issue 21's throughput gap).

Under load, `serve` answers groups of requests that arrived together: at 32 one-text clients,
groups of about 16 random SST-2 sentences. This bench times only the model's side of such
groups, in process, with no HTTP, against `predict`'s own batches (the file sorted by length,
64 texts a pass), and prints the ms per text of each way side by side from one run:

- one padded pass per group (the first server);
- the server's split by length (`serving.grouping.split_by_length`, one pass per run);
- the server's `GroupRunner` itself (the split, plus predict's tokenizing and records);
- packed: the group's texts laid end to end in rows of at most `--pack-tokens` tokens, with a
  block-diagonal attention mask and positions restarting per text, one pass for the group. A
  prototype for BERT-family models (`model.bert`, pooled first token); its logits are checked
  against each text run alone;
- with `--compile`, the padded and sorted passes through `torch.compile(dynamic=True)`.

    python bench/serve_groups.py --model /path/to/finetuned/model
    python bench/serve_groups.py --compile
"""

from __future__ import annotations

import argparse
import random

import common

COLUMNS = ["configuration", "ms/text", "vs predict's batches", "rounds"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="minilm", help="'minilm' (new head) or a fine_tune output folder")
    p.add_argument("--group-size", type=int, default=16, help="texts per group (32 clients: ~16)")
    p.add_argument("--groups", type=int, default=60)
    p.add_argument("--pack-tokens", type=int, nargs="+", default=[128], help="most tokens in one packed row")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="add torch.compile(dynamic=True) rows")
    return p.parse_args(argv)


def padded_pass(model, ids_list):
    import torch

    width = max(map(len, ids_list))
    ids = torch.zeros(len(ids_list), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, x in enumerate(ids_list):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return model(input_ids=ids, attention_mask=mask).logits


def packed_pass(model, ids_list, cap):
    """One pass over `ids_list` laid end to end in rows of at most `cap` tokens (first fit,
    longest first); each text attends only to itself and is pooled at its own first token."""
    import torch

    rows: list[list] = []  # [tokens used, member indices]
    for i in sorted(range(len(ids_list)), key=lambda i: -len(ids_list[i])):
        row = next((r for r in rows if r[0] + len(ids_list[i]) <= cap), None)
        if row is None:
            rows.append([0, []])
            row = rows[-1]
        row[0] += len(ids_list[i])
        row[1].append(i)
    width = max(r[0] for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    pos = torch.zeros_like(ids)
    seg = torch.full_like(ids, -1)
    first: list[tuple[int, int]] = [(0, 0)] * len(ids_list)
    for r, (_, members) in enumerate(rows):
        at = 0
        for s, i in enumerate(members):
            n = len(ids_list[i])
            ids[r, at : at + n] = torch.tensor(ids_list[i])
            pos[r, at : at + n] = torch.arange(n)
            seg[r, at : at + n] = s
            first[i] = (r, at)
            at += n
    same = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] >= 0)
    pad_self = torch.eye(width, dtype=torch.bool)[None] & (seg[:, :, None] < 0)  # no empty rows
    mask = (same | pad_self)[:, None]
    hidden = model.bert(
        input_ids=ids, attention_mask=mask, position_ids=pos, token_type_ids=torch.zeros_like(ids)
    ).last_hidden_state
    cls = torch.stack([hidden[r, at] for r, at in first])
    return model.classifier(model.bert.pooler(cls[:, None, :]))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.require_shared("serve_groups (SST-2 test sentences)")
    import torch

    from modernbert_tasks import load_finetuned
    from modernbert_tasks.serving.grouping import split_by_length
    from modernbert_tasks.serving.metrics import Metrics
    from modernbert_tasks.serving.predicting import GroupRunner

    print(common.machine_header("server groups: the model's cost per text, by how a group is run"))
    work = common.scratch_dir(None, "bench-serve-groups-")
    model_dir = common.prepare_model(args.model, work)
    predictor = load_finetuned(model_dir, device="cpu", precision="fp32")
    model, tokenizer = predictor.model, predictor.tokenizer
    if not hasattr(model, "bert"):
        raise SystemExit("the packed prototype needs a BERT-family model (model.bert): use --model minilm")
    texts = [t for t, _ in common.read_tsv(common.SST2_DIR / "test.tsv")]
    enc = [tokenizer(t, truncation=True, max_length=predictor.max_length)["input_ids"] for t in texts]
    rng = random.Random(0)
    groups = [rng.sample(range(len(texts)), args.group_size) for _ in range(args.groups)]
    order = sorted(range(len(texts)), key=lambda i: len(enc[i]))
    file_batches = [order[j : j + 64] for j in range(0, len(order), 64)]
    group_texts = len(groups) * args.group_size
    print(
        f"model: {args.model}; {len(groups)} random groups of {args.group_size} SST-2 test sentences; "
        f"predict's batches: the {len(texts)} sentences sorted, 64 a pass; fp32"
    )

    def split_passes(m, ids_list):
        for run in split_by_length([len(x) for x in ids_list], max_size=64):
            padded_pass(m, [ids_list[i] for i in run])

    runner = GroupRunner(predictor, Metrics(), batch_size=64, workers=1)
    ways = {
        "predict's batches (sorted file, 64 a pass)": (
            lambda: [padded_pass(model, [enc[i] for i in b]) for b in file_batches],
            len(texts),
        ),
        "one padded pass per group": (
            lambda: [padded_pass(model, [enc[i] for i in g]) for g in groups],
            group_texts,
        ),
        "split by length (the server's runs)": (
            lambda: [split_passes(model, [enc[i] for i in g]) for g in groups],
            group_texts,
        ),
        "the server's GroupRunner (split + predict's records)": (
            lambda: [runner([texts[i] for i in g], False) for g in groups],
            group_texts,
        ),
    }
    for cap in args.pack_tokens:
        ways[f"packed, rows of <= {cap} tokens"] = (
            lambda cap=cap: [packed_pass(model, [enc[i] for i in g], cap) for g in groups],
            group_texts,
        )
    with torch.inference_mode():
        alone = torch.cat([padded_pass(model, [enc[i]]) for g in groups[:8] for i in g])
        packed = torch.cat([packed_pass(model, [enc[i] for i in g], args.pack_tokens[0]) for g in groups[:8]])
        grouped = torch.cat([padded_pass(model, [enc[i] for i in g]) for g in groups[:8]])
    print(
        f"max |logit difference| against each text alone: packed {(packed - alone).abs().max().item():.2e}, "
        f"one padded pass {(grouped - alone).abs().max().item():.2e}"
    )
    if args.compile:
        compiled = torch.compile(model, dynamic=True)
        seconds, _ = common.elapsed(
            lambda: [padded_pass(compiled, [enc[i] for i in g]) for g in groups[:3] + file_batches[:3]]
        )
        print(f"torch.compile warm-up: {seconds:.1f} s")
        ways["compiled: predict's batches"] = (
            lambda: [padded_pass(compiled, [enc[i] for i in b]) for b in file_batches],
            len(texts),
        )
        ways["compiled: one padded pass per group"] = (
            lambda: [padded_pass(compiled, [enc[i] for i in g]) for g in groups],
            group_texts,
        )

    def timed(fn, n):
        def run() -> dict[str, float]:
            with torch.inference_mode():
                seconds, _ = common.elapsed(fn)
            return {"ms/text": 1000 * seconds / n}

        return run

    with torch.inference_mode():
        for fn, _ in ways.values():  # one untimed pass each: first-call costs out of the rounds
            fn()
    results = common.interleaved({name: timed(fn, n) for name, (fn, n) in ways.items()}, args.rounds)
    base = common.median(results["predict's batches (sorted file, 64 a pass)"])["ms/text"]
    rows = []
    for name, runs in results.items():
        ms = common.median(runs)["ms/text"]
        rows.append(
            {
                "configuration": name,
                "ms/text": ms,
                "vs predict's batches": f"{base / ms:.2f}x",
                "rounds": ", ".join(f"{r['ms/text']:.2f}" for r in runs),
            }
        )
    print()
    print(common.format_table(rows, COLUMNS))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
