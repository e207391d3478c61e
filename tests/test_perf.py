"""The opt-in speed levers train the same model as the default path: shape buckets, compile
(with its eager fallback) and frozen embeddings. Speed itself is measured by
bench/profile_step.py and bench/train_throughput.py, never asserted here."""

from __future__ import annotations

import logging
import sys

import pytest

from modernbert_tasks import fine_tune
from modernbert_tasks.training import speed
from modernbert_tasks.training.batching import BucketedPadding, make_collator

# 50 steps of batch 16 on the 320 synthetic rows (2.5 epochs); a loss logged every step. The
# validation and test splits (80 rows each) are scored in one batch: one shape, so a compiled
# model compiles one evaluation graph instead of two (batches of 64 and 16)
RUN = {
    "learning_rate": 1e-3,
    "max_steps": 50,
    "logging_steps": 1,
    "eval_strategy": "no",
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "precision": "fp32",
    "per_device_eval_batch_size": 80,
}


def _losses(result) -> list[float]:
    return [e["loss"] for e in result.log_history if "loss" in e]


@pytest.fixture(scope="module")
def eager(tiny_model_dir, sentiment_dir, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        data_dir=str(sentiment_dir),
        output_dir=tmp_path_factory.mktemp("eager"),
        **RUN,
    )


def test_bucket_widths():
    assert speed.bucket_widths("pow2", False, 128) == (16, 32, 64, 128)
    assert speed.bucket_widths("pow2", False, 100) == (16, 32, 64, 100)
    assert speed.bucket_widths("auto", True, 512) == (16, 32, 64, 128, 256, 512)
    assert speed.bucket_widths("auto", False, 128) is None
    assert speed.bucket_widths("none", True, 128) is None


def test_bucketed_collator_pads_to_the_next_width(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    collate = make_collator(tokenizer, None, (16, 32, 64))
    assert isinstance(collate, BucketedPadding)
    rows = [{"input_ids": [1] * n, "attention_mask": [1] * n, "label": 0} for n in (3, 17)]
    batch = collate(rows)
    assert tuple(batch["input_ids"].shape) == (2, 32)
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 17]
    assert batch["labels"].tolist() == [0, 0]
    rows.append({"input_ids": [1] * 70, "attention_mask": [1] * 70, "label": 1})
    assert collate(rows)["input_ids"].shape[1] == 70  # beyond the largest width: its longest


def test_buckets_alone_do_not_change_training(eager, tiny_model_dir, sentiment_dir, tmp_path):
    bucketed = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        data_dir=str(sentiment_dir),
        output_dir=tmp_path,
        shape_buckets="pow2",
        **RUN,
    )
    # extra padding is masked out: the same losses up to float reassociation
    assert _losses(bucketed) == pytest.approx(_losses(eager), rel=1e-3, abs=1e-4)
    assert len(_losses(eager)) == 50


def test_reusing_step_memory_changes_no_update(eager, tiny_model_dir, sentiment_dir, tmp_path, monkeypatch):
    """reuse_memory (the default) against the plain Trainer's fresh gradients: bit for bit the
    same losses and weights, and the gradient tensors really are the same ones every step. The
    tiny model's gradients are all under the size where buffers are kept, so every one is kept
    here."""
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    import modernbert_tasks.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "kept_gradient_min_bytes", lambda: 0)

    class GradientAddresses(TrainerCallback):
        def __init__(self) -> None:
            self.addresses: list[int] = []

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            self.addresses.append(model.classifier.weight.grad.data_ptr())

    seen = {}
    for reuse in (False, True):
        watch = GradientAddresses()
        seen[reuse] = (
            watch,
            fine_tune(
                "sst2",
                model_name=str(tiny_model_dir),
                data_dir=str(sentiment_dir),
                output_dir=tmp_path / f"reuse-{reuse}",
                reuse_memory=reuse,
                callbacks=[watch],
                **{**RUN, "max_steps": 12},
            ),
        )
    (_, plain), (reused_watch, reused) = seen[False], seen[True]
    assert _losses(reused) == _losses(plain) and len(_losses(plain)) == 12
    plain_weights = load_file(plain.model_path / "model.safetensors")
    reused_weights = load_file(reused.model_path / "model.safetensors")
    assert plain_weights.keys() == reused_weights.keys()
    assert all(plain_weights[k].equal(reused_weights[k]) for k in plain_weights)
    assert len(set(reused_watch.addresses)) == 1 and len(reused_watch.addresses) == 12


def test_only_gradients_glibc_would_return_are_kept():
    """Gradients under the size glibc keeps in its heap come back from malloc without fresh
    pages; a kept buffer would only add a zeroing and an accumulating pass."""
    import torch

    from modernbert_tasks.training.memory import KeepGradientBuffers, kept_gradient_min_bytes

    model = torch.nn.ModuleList([torch.nn.Linear(64, 64), torch.nn.Linear(4, 4)])
    keep = KeepGradientBuffers(min_bytes=64 * 64 * 4)
    (model[0](torch.ones(1, 64)).sum() + model[1](torch.ones(1, 4)).sum()).backward()
    keep.on_pre_optimizer_step(None, None, None, model=model)
    assert [p for p, _ in keep.buffers] == [model[0].weight]
    model.zero_grad(set_to_none=True)
    keep.on_step_begin(None, None, None)
    assert model[0].weight.grad is not None and not model[0].weight.grad.any()
    assert model[0].bias.grad is None and model[1].weight.grad is None  # too small: not kept
    if sys.platform.startswith("linux"):  # glibc's largest mmap threshold; elsewhere all are kept
        assert kept_gradient_min_bytes() == 32 << 20


def test_the_flop_count_is_the_trainers(tiny_model_dir, tmp_path):
    """TaskTrainer counts the parameters once per model; the estimate is the Trainer's."""
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    from modernbert_tasks.training.trainer import TaskTrainer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    trainer = TaskTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), report_to="none"))
    inputs = {"input_ids": torch.ones(4, 9, dtype=torch.long)}
    expected = Trainer.floating_point_ops(trainer, inputs)
    assert expected > 0 and trainer.floating_point_ops(inputs) == expected
    trainer.model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=5, ignore_mismatched_sizes=True
    )
    assert trainer.floating_point_ops(inputs) == Trainer.floating_point_ops(trainer, inputs)


def test_compiled_fast_path_follows_the_eager_loss_curve(
    eager, tiny_model_dir, sentiment_dir, tmp_path, monkeypatch
):
    clips = []
    call = speed.CompiledClip.__call__
    monkeypatch.setattr(speed.CompiledClip, "__call__", lambda *a: clips.append(1) or call(*a))
    fast = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        data_dir=str(sentiment_dir),
        output_dir=tmp_path,
        compile=True,
        **RUN,
    )
    fast_losses, eager_losses = _losses(fast), _losses(eager)
    assert len(fast_losses) == len(eager_losses) == 50
    # fused kernels reorder float sums; over 50 steps the curves stay within 2%
    assert fast_losses == pytest.approx(eager_losses, rel=2e-2, abs=2e-3)
    assert eager_losses[-1] < 0.5 * eager_losses[0]  # it did learn
    for result in (eager, fast):  # the tiny learnable test keeps its accuracy
        assert result.metrics["accuracy"] >= 0.85 and result.metrics["test_accuracy"] >= 0.85
    assert (fast.model_path / "model.safetensors").is_file()
    assert len(clips) == 50  # every step clipped with the compiled clip


@pytest.mark.parametrize("max_norm", [0.5, 1e6], ids=["clipped", "under the limit"])
def test_the_compiled_clip_is_torchs_clip(max_norm, caplog):
    import torch

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(7, 5), (5,), (300,), (2, 3, 4)]]
    for p in params:
        p.grad = torch.randn_like(p)
    params.append(torch.nn.Parameter(torch.zeros(3)))  # no gradient: skipped, as torch does
    reference = [p.detach().clone().requires_grad_() for p in params[:-1]]
    for r, p in zip(reference, params, strict=False):
        r.grad = p.grad.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(reference, max_norm)

    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        norm = speed.CompiledClip()(params, max_norm)
    assert not caplog.records  # it compiled
    torch.testing.assert_close(norm, expected_norm)
    for p, r in zip(params[:-1], reference, strict=True):
        torch.testing.assert_close(p.grad, r.grad)
    assert float(speed.CompiledClip()([torch.nn.Parameter(torch.ones(2))], max_norm)) == 0.0  # no grads
    if max_norm < 1:  # the clip did act
        assert float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params[:-1]]))) == (
            pytest.approx(max_norm, rel=1e-4)
        )


def test_a_failing_compiler_falls_back_to_eager(tiny_model_dir, caplog):
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    model.eval()
    ids = torch.tensor([[1, 5, 6, 7, 2]])
    expected = model(input_ids=ids).logits

    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        speed.compile_in_place(model, backend=broken_backend)
        logits = model(input_ids=ids).logits
        again = model(input_ids=ids).logits  # eager from now on, without a second warning
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(again, expected)
    warnings = [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 1 and "no compiler here" in warnings[0].getMessage()


def test_freeze_embeddings_trains_everything_else(tiny_model_dir, sentiment_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    result = fine_tune(
        "sst2",
        model_name=str(tiny_model_dir),
        data_dir=str(sentiment_dir),
        output_dir=tmp_path,
        freeze_embeddings=True,
        **{**RUN, "max_steps": 5},
    )
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(result.model_path / "model.safetensors")
    emb = next(k for k in before if k.endswith("embeddings.tok_embeddings.weight"))
    assert torch.equal(before[emb], after[emb])
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert any("layers.0" in k for k in changed)
