"""The training-time estimate printed after the first steps (training/eta.py)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from modernbert_tasks.errors import speaking_cli
from modernbert_tasks.training.eta import TimeEstimate, format_duration


class FakeClock:
    def __init__(self, seconds_per_step: float):
        self.now, self.step = 0.0, seconds_per_step

    def __call__(self) -> float:
        return self.now


def _drive(estimate: TimeEstimate, clock: FakeClock, max_steps: int, device: str, steps: int):
    args = SimpleNamespace(device=SimpleNamespace(type=device))
    state = SimpleNamespace(global_step=0, max_steps=max_steps, is_world_process_zero=True)
    for step in range(1, steps + 1):
        clock.now += clock.step * (10 if step == 1 else 1)  # the first step pays for warm-up
        state.global_step = step
        estimate.on_step_end(args, state, None)


def test_estimate_from_the_steps_after_the_first(caplog):
    clock = FakeClock(seconds_per_step=2.0)
    with caplog.at_level(logging.INFO, logger="modernbert_tasks"):
        _drive(TimeEstimate(clock), clock, max_steps=300, device="cuda", steps=20)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Training time: about 10m 00s for 300 steps (2.00 s per step over the "
        "first 6; evaluations come on top)."
    ]  # logged once, warm-up excluded


@pytest.mark.parametrize("cli", [False, True])
def test_a_long_cpu_run_suggests_the_demo_subset(caplog, cli):
    clock = FakeClock(seconds_per_step=3.0)  # 12,630 steps: the recipe on a CPU, roughly
    with caplog.at_level(logging.INFO, logger="modernbert_tasks"):
        if cli:
            with speaking_cli():
                _drive(TimeEstimate(clock), clock, max_steps=12630, device="cpu", steps=6)
        else:
            _drive(TimeEstimate(clock), clock, max_steps=12630, device="cpu", steps=6)
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "That is long for a CPU" in warning[0]
    assert ("--max-train-samples 1000" if cli else "max_train_samples=1000") in warning[0]
    assert "10h 31m" in caplog.records[0].getMessage()


def test_short_cpu_runs_and_gpu_runs_get_no_suggestion(caplog):
    for device, seconds in (("cpu", 0.5), ("cuda", 3.0)):
        clock = FakeClock(seconds)
        with caplog.at_level(logging.INFO, logger="modernbert_tasks"):
            _drive(TimeEstimate(clock), clock, max_steps=2000, device=device, steps=10)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_format_duration():
    assert format_duration(3723) == "1h 02m 03s"
    assert format_duration(245) == "4m 05s" and format_duration(6.1) == "6.1s"
