"""Padding efficiency of batching strategies over a whole epoch, without a model.

Tokenizes the training split once and replays each strategy's batch order over one epoch:
padding every text to max_length (the recipe), random batches padded to their longest
(dynamic padding), and transformers' length grouping with mega-batches of 50 batches (its
default, what `fine_tune` uses) and larger ones up to one global sort. Efficiency = real tokens
/ padded tokens; "padded tokens/sample" is what the model computes per training sample.

    python bench/padding.py                       # full SST-2 train, ModernBERT tokenizer
    python bench/padding.py --mega 50,200 --batch-size 32
"""

from __future__ import annotations

import argparse
from pathlib import Path

import common

COLUMNS = ["batching", "padding efficiency", "padded tokens/sample", "ratio"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--tokenizer",
        default=str(common.SHARED / "models" / "modernbert-base"),
        help="folder with the tokenizer (default: ModernBERT's, from ../shared)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=common.SST2_DIR / "train.tsv",
        help="TSV with a 'sentence' column (default: SST-2 train, 67,349 rows)",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument(
        "--mega", default="50,100,200,500,0", help="mega-batch sizes in batches (0: one global sort)"
    )
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args(argv)


def epoch_padding(
    lengths: list[int], order: list[int], batch_size: int, width: int | None = None
) -> tuple[float, float]:
    """(real / padded tokens, padded tokens per sample) over the batches of `order`."""
    real = padded = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        real += sum(batch)
        padded += (width or max(batch)) * len(batch)
    return real / padded, padded / len(order)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for what, path in (("data", args.data), ("tokenizer", Path(args.tokenizer))):
        if not path.exists():
            common.skip(f"padding needs the {what} at {path} (../shared, or pass --{what})")
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import get_length_grouped_indices

    print(common.machine_header("padding efficiency per batching strategy (one epoch)"))
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    texts = [t for t, _ in common.read_tsv(args.data)]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    print(
        f"{len(texts)} texts from {args.data}; {sum(lengths) / len(lengths):.2f} tokens on "
        f"average, longest {max(lengths)}; batch {args.batch_size}"
    )

    def generator() -> torch.Generator:
        return torch.Generator().manual_seed(args.seed)

    random_order = torch.randperm(len(lengths), generator=generator()).tolist()
    rows = [
        (
            "recipe: pad to max_length, random",
            epoch_padding(lengths, random_order, args.batch_size, width=args.max_length),
        ),
        ("dynamic padding, random", epoch_padding(lengths, random_order, args.batch_size)),
    ]
    n_batches = -(-len(lengths) // args.batch_size)
    for mega in (int(m) for m in args.mega.split(",") if m.strip()):
        mult = mega or n_batches
        order = get_length_grouped_indices(
            lengths, args.batch_size, mega_batch_mult=mult, generator=generator()
        )
        name = (
            "length-grouped, one global sort"
            if not mega
            else f"length-grouped, mega-batches of {mega}" + (" (fine_tune)" if mega == 50 else "")
        )
        rows.append((name, epoch_padding(lengths, order, args.batch_size)))

    base = rows[0][1][1]
    table = [
        {
            "batching": name,
            "padding efficiency": eff,
            "padded tokens/sample": per_sample,
            "ratio": f"{base / per_sample:.2f}x",
        }
        for name, (eff, per_sample) in rows
    ]
    print("\nratio = the recipe's padded tokens per sample / this strategy's (less work)")
    print(common.format_table(table, COLUMNS))
    print(f"end: {common.load_line()}")


if __name__ == "__main__":
    main()
