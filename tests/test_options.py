"""Option names, types, precedence and descriptions; hardware choices. No training here."""

from __future__ import annotations

import json

import pytest

from modernbert_tasks import ConfigError, Task, fine_tune, get_task
from modernbert_tasks import hardware as hw
from modernbert_tasks.options import (
    RECIPE_DEFAULTS,
    TrainOptions,
    auto_eval_steps,
    describe_options,
    resolve_options,
    trainer_fields,
)

SST2 = get_task("sst2")


def _task(**hyperparameters) -> Task:
    return Task(name="toy", labels=("no", "yes"), hyperparameters=hyperparameters)


# --- names ----------------------------------------------------------------------------------
def test_unknown_trainer_argument_suggests_the_close_name():
    with pytest.raises(ConfigError) as err:
        resolve_options(SST2, {"learning_rat": 1e-4})
    assert "'learning_rat'" in str(err.value) and "learning_rate" in str(err.value)


def test_unknown_library_option_suggests_from_the_library_set():
    with pytest.raises(ConfigError, match="max_train_samples"):
        resolve_options(SST2, {"max_train_sample": 10})


def test_fine_tune_rejects_an_unknown_argument_before_loading_anything(tmp_path):
    # the model does not exist: reaching it would raise ModelLoadError instead
    with pytest.raises(ConfigError, match="num_train_epoch"):
        fine_tune("sst2", model_name=str(tmp_path / "absent"), num_train_epoch=1)


def test_old_transformers_names_point_at_the_new_ones():
    with pytest.raises(ConfigError, match="use eval_strategy instead"):
        resolve_options(SST2, {"evaluation_strategy": "steps"})
    with pytest.raises(ConfigError, match="overwrite=True"):
        resolve_options(SST2, {"overwrite_output_dir": True})


def test_a_bad_name_in_task_hyperparameters_names_the_task():
    with pytest.raises(ConfigError, match="Task 'toy' hyperparameters: unknown option 'lr'"):
        resolve_options(_task(lr=1e-3), {})


# --- types ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("num_train_epochs", "three", "float"),
        ("per_device_train_batch_size", 16.5, "int"),
        ("max_train_samples", True, "int | None"),  # a bool is not a count
        ("padding", "maxlength", "'longest' | 'max_length'"),
        ("load_best_model_at_end", "yes", "bool"),
    ],
)
def test_wrong_type_names_field_value_and_expected_type(name, value, expected):
    with pytest.raises(ConfigError) as err:
        resolve_options(SST2, {name: value})
    message = str(err.value)
    assert f"{name}={value!r}" in message and f"expected {expected}" in message


def test_ints_are_accepted_for_floats_and_paths_for_strings(tmp_path):
    resolved = resolve_options(SST2, {"num_train_epochs": 2, "data_dir": tmp_path, "cache_dir": tmp_path})
    assert resolved.trainer_kwargs["num_train_epochs"] == 2
    assert resolved.options.data_dir == str(tmp_path)


@pytest.mark.parametrize(
    "args",
    [
        {"max_train_samples": 0},
        {"max_eval_samples": -1},
        {"max_length": 4},
        {"resume": True, "overwrite": True},
    ],
)
def test_values_that_leave_nothing_to_train_on_are_refused(args):
    with pytest.raises(ConfigError, match=next(iter(args))):
        resolve_options(SST2, args)


# --- precedence -------------------------------------------------------------------------------
def test_caller_beats_task_beats_recipe():
    task = _task(learning_rate=1e-4, num_train_epochs=5, group_by_length=False)
    resolved = resolve_options(task, {"learning_rate": 2e-4})
    kw, src = resolved.trainer_kwargs, resolved.sources
    assert (kw["learning_rate"], src["learning_rate"]) == (2e-4, "caller")
    assert (kw["num_train_epochs"], src["num_train_epochs"]) == (5, "task 'toy'")
    assert (kw["weight_decay"], src["weight_decay"]) == (0.01, "recipe")
    assert kw["per_device_train_batch_size"] == 16 and kw["per_device_eval_batch_size"] == 64
    assert resolved.options.group_by_length is False  # a library option from the task
    # the best model is chosen by the task's main metric
    assert kw["metric_for_best_model"] == "accuracy" and kw["greater_is_better"] is True


def test_sst2_task_learning_rate_applies_unless_overridden():
    assert resolve_options(SST2, {}).trainer_kwargs["learning_rate"] == 3e-5
    assert resolve_options(SST2, {"learning_rate": 1e-3}).trainer_kwargs["learning_rate"] == 1e-3


def test_the_recipes_warmup_is_a_ratio_not_500_steps():
    kw = resolve_options(SST2, {}).trainer_kwargs
    assert 0 < kw["warmup_steps"] < 1


def test_auto_evaluation_interval_is_the_recipes_50_steps_or_a_tenth_of_the_run():
    kw = resolve_options(SST2, {}).trainer_kwargs
    assert kw["eval_steps"] == kw["save_steps"] == "auto"
    assert auto_eval_steps(189) == 50  # the recipe's 1,000-example subset: as the recipe did
    assert auto_eval_steps(12630) == 1263  # full SST-2, 3 epochs: ten evaluations, not 250
    assert resolve_options(SST2, {"eval_steps": "auto"}).trainer_kwargs["save_steps"] == "auto"


def test_setting_eval_steps_moves_save_steps_with_it():
    kw = resolve_options(SST2, {"eval_steps": 50}).trainer_kwargs
    assert kw["save_steps"] == 50
    kw = resolve_options(SST2, {"save_strategy": "epoch"}).trainer_kwargs
    assert kw["eval_strategy"] == "epoch"
    kw = resolve_options(SST2, {"eval_steps": 50, "save_steps": 100}).trainer_kwargs
    assert (kw["eval_steps"], kw["save_steps"]) == (50, 100)


def test_no_evaluation_turns_off_best_model_loading():
    kw = resolve_options(SST2, {"eval_strategy": "no"}).trainer_kwargs
    assert kw["load_best_model_at_end"] is False
    assert kw["save_strategy"] == "steps"  # checkpoints stay: resume=True needs them
    kw = resolve_options(SST2, {"save_strategy": "no"}).trainer_kwargs
    assert kw["load_best_model_at_end"] is False and kw["eval_strategy"] == "steps"


@pytest.mark.parametrize(
    "args", [{"eval_strategy": "no"}, {"save_strategy": "no"}, {"save_strategy": "epoch"}, {"eval_steps": 50}]
)
def test_schedules_a_caller_changes_still_build(args, tmp_path):
    from modernbert_tasks.training.engine import training_arguments

    training_arguments(resolve_options(SST2, args), hw.detect(precision="fp32", use_cpu=True), tmp_path)


def test_bf16_fp16_flags_become_the_precision_option():
    assert resolve_options(SST2, {"bf16": True}).options.precision == "bf16"
    assert resolve_options(SST2, {"bf16": False}).options.precision == "fp32"
    assert "bf16" not in resolve_options(SST2, {"bf16": True}).trainer_kwargs
    with pytest.raises(ConfigError, match="contradicts"):
        resolve_options(SST2, {"bf16": True, "precision": "fp32"})
    with pytest.raises(ConfigError, match="pick one"):
        resolve_options(SST2, {"bf16": True, "fp16": True})


def test_resolved_defaults_build_valid_training_arguments(tmp_path):
    from modernbert_tasks.training.engine import training_arguments

    resolved = resolve_options(SST2, {"eval_steps": 50})
    cpu = hw.detect(precision="fp32", use_cpu=True)
    args = training_arguments(resolved, cpu, tmp_path)
    assert (args.eval_steps, args.save_steps, args.save_total_limit) == (50, 50, 2)
    assert args.load_best_model_at_end and args.metric_for_best_model == "accuracy"
    assert args.train_sampling_strategy == "group_by_length" and args.report_to == ["tensorboard"]
    assert args.warmup_steps == RECIPE_DEFAULTS["warmup_steps"].value


def test_auto_intervals_build_valid_training_arguments(tmp_path):
    from modernbert_tasks.training.engine import training_arguments

    resolved = resolve_options(SST2, {})
    args = training_arguments(resolved, hw.detect(precision="fp32", use_cpu=True), tmp_path)
    assert args.eval_steps == args.save_steps  # a stand-in until the data size is known


def test_incompatible_training_arguments_become_a_config_error(tmp_path):
    from modernbert_tasks.training.engine import training_arguments

    resolved = resolve_options(SST2, {"eval_steps": 30, "save_steps": 50})
    with pytest.raises(ConfigError, match="save_steps"):
        training_arguments(resolved, hw.detect(precision="fp32", use_cpu=True), tmp_path)


# --- describing -------------------------------------------------------------------------------
def test_describe_options_lists_every_option_once_with_its_source():
    rows = describe_options(SST2)
    json.dumps(rows)  # the CLI and the docs generator print it as JSON
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
    expected = set(TrainOptions.__dataclass_fields__) | set(trainer_fields())
    assert set(names) == expected
    by_name = {r["name"]: r for r in rows}
    assert set(by_name["padding"]) == {"name", "group", "type", "default", "source", "help"}
    assert by_name["learning_rate"]["default"] == 3e-5
    assert by_name["learning_rate"]["source"] == "task 'sst2'"
    assert by_name["per_device_train_batch_size"] == {
        **by_name["per_device_train_batch_size"],
        "default": 16,
        "source": "recipe",
    }
    assert "6%" in by_name["warmup_steps"]["source"]
    assert by_name["adam_beta1"]["source"] == "transformers.TrainingArguments"
    assert by_name["metric_for_best_model"]["default"] == "accuracy"
    assert by_name["output_dir"]["default"] == "runs/sst2"
    assert all(r["help"] for r in rows if r["group"] == "modernbert_tasks")


# --- hardware ---------------------------------------------------------------------------------
def test_cpu_bf16_is_read_from_torchs_cpu_capabilities(monkeypatch):
    import torch

    monkeypatch.delenv(hw.FORCE_BF16_ENV, raising=False)
    assert hw.cpu_supports_bf16({"avx512_bf16": True, "amx_bf16": True}) == (True, "CPU has amx_bf16")
    # AVX512-BF16 without AMX: fast on some CPUs, slower than fp32 on others, so measured
    avx512_bf16 = {"avx512_bf16": True, "amx_bf16": False}
    fast, why = hw.cpu_supports_bf16(avx512_bf16, speedup=lambda: 2.5)
    assert fast is True and "bf16 matmul measured 2.50x fp32's speed here (at least 1.25x)" in why
    slow, why = hw.cpu_supports_bf16(avx512_bf16, speedup=lambda: 0.57)
    assert slow is False and "measured 0.57x fp32's speed here (under 1.25x)" in why
    assert hw.cpu_supports_bf16({"avx512_bf16": False, "avx2": True}, speedup=lambda: 9.0)[0] is False
    caps = torch.cpu.get_capabilities()  # this machine: the answer follows its flags
    if caps.get("amx_bf16") or not caps.get("avx512_bf16"):
        assert hw.cpu_supports_bf16()[0] is bool(caps.get("amx_bf16"))
    else:
        expected = hw.measured_bf16_speedup() >= hw.BF16_MIN_SPEEDUP
        assert hw.cpu_supports_bf16()[0] is expected


def test_the_bf16_speedup_is_measured_once_per_process():
    first = hw.measured_bf16_speedup()
    assert first > 0 and hw.measured_bf16_speedup() == first  # cached: one decision per process


def test_the_bf16_decision_can_be_forced_either_way(monkeypatch):
    monkeypatch.setenv(hw.FORCE_BF16_ENV, "1")
    assert hw.cpu_supports_bf16() == (True, f"{hw.FORCE_BF16_ENV}=1")
    assert hw.detect(use_cpu=True).precision == "bf16"
    monkeypatch.setenv(hw.FORCE_BF16_ENV, "0")
    assert hw.detect(use_cpu=True).precision == "fp32"
    monkeypatch.setenv(hw.FORCE_BF16_ENV, "yes")
    with pytest.raises(ConfigError, match=f"{hw.FORCE_BF16_ENV}='yes'; expected 1"):
        hw.cpu_supports_bf16()


def test_auto_precision_on_cpu_follows_the_flags(monkeypatch):
    monkeypatch.setattr(hw, "cpu_supports_bf16", lambda: (True, "CPU has avx512_bf16"))
    choice = hw.detect(use_cpu=True)
    assert (choice.precision, choice.device) == ("bf16", "cpu")
    assert choice.trainer_kwargs() == {"bf16": True, "fp16": False, "use_cpu": True}
    assert choice.attention == "sdpa" and choice.pad_to_multiple_of is None
    monkeypatch.setattr(hw, "cpu_supports_bf16", lambda: (False, "no bf16"))
    assert hw.detect(use_cpu=True).precision == "fp32"
    assert hw.detect(precision="bf16", use_cpu=True).precision == "bf16"  # asked for: obeyed


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ConfigError, match="fp16.*CUDA"):
        hw.detect(precision="fp16", use_cpu=True)


# --- numbers that cannot be right --------------------------------------------------------------
@pytest.mark.parametrize("name", ["num_train_epochs", "learning_rate", "weight_decay", "warmup_steps"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_inf_are_refused_up_front(name, value):
    with pytest.raises(
        ConfigError,
        match=rf"{name}={value!r} is not a finite number; expected "
        "a number, e.g.",
    ):
        resolve_options(SST2, {name: value})


def test_learning_rates_far_above_fine_tuning_warn_and_above_one_fail(caplog):
    with pytest.raises(
        ConfigError,
        match=r"learning_rate=2\.0 is out of range: .* Fine-tuning "
        r"uses 1e-5 to 1e-4 .* Nothing was changed on disk",
    ):
        resolve_options(SST2, {"learning_rate": 2.0})
    with caplog.at_level("WARNING", logger="modernbert_tasks"):
        resolve_options(SST2, {"learning_rate": 0.05})
    assert "learning_rate=0.05 is far above the usual 1e-5 to 1e-4" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="modernbert_tasks"):
        resolve_options(SST2, {"learning_rate": 5e-5})
    assert "far above" not in caplog.text


def test_cli_nan_epochs_exit_2_before_any_data_is_read(tmp_path, capsys):
    from modernbert_tasks.cli import main

    code = main(
        [
            "train",
            "sst2",
            "--data-dir",
            str(tmp_path / "absent"),
            "--model",
            str(tmp_path / "absent-model"),
            "--num-train-epochs",
            "nan",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--num-train-epochs nan is not a finite number" in err
