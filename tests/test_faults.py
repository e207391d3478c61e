"""Fault drills on a tiny ModernBERT: kill -9 and resume, a crash in the final save, Ctrl-C, two
runs in one folder, a full disk while checkpointing, and 50,000 texts in one predict call.

Every drill compares against `reference`, one uninterrupted run with the same seed."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import astuple
from pathlib import Path

import pytest
from transformers import Trainer, TrainerCallback

from modernbert_tasks import fine_tune, load_finetuned
from modernbert_tasks.testing import make_sentiment_rows, write_tsv
from modernbert_tasks.training.checkpoints import OutputWriteError
from modernbert_tasks.training.interrupts import GracefulInterrupt, TrainingInterrupted, stop_on_sigint
from modernbert_tasks.training.locking import HOLDER_NAME, LOCK_NAME, RunLock, RunLockedError

CLI = [sys.executable, "-m", "modernbert_tasks"]
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
}
# 320 rows / 16 = 20 steps an epoch; 24 steps; warmup over the first 6; a checkpoint every 6
ARGS = {
    "report_to": "none",
    "max_length": 32,
    "disable_tqdm": True,
    "learning_rate": 1e-3,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 64,
    "max_steps": 24,
    "warmup_steps": 6,
    "logging_steps": 1,
    "save_steps": 6,
    "eval_steps": 6,
    "seed": 7,
}
TEXTS = ["a wonderful , moving film", "the plot was dull and tedious", "i found the cast superb"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fault-data")
    write_tsv(root / "train.tsv", make_sentiment_rows(320, seed=21))
    write_tsv(root / "validation.tsv", make_sentiment_rows(64, seed=22))
    return root


def _train(model: Path, data: Path, out: Path, **extra):
    return fine_tune("sst2", str(model), out, data_dir=str(data), **{**ARGS, **extra})


@pytest.fixture(scope="module")
def reference(tiny_model_dir, data_dir, tmp_path_factory):
    """The uninterrupted run every drill is compared with."""
    return _train(tiny_model_dir, data_dir, tmp_path_factory.mktemp("reference") / "run")


class StepLog(TrainerCallback):
    """The global steps this process ran."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def _by_step(result, key: str) -> dict[int, float]:
    return {e["step"]: e[key] for e in result.log_history if key in e}


def test_reference_run_learns(reference):
    assert reference.metrics["accuracy"] >= 0.9  # chance is 0.5: the drills compare real runs
    assert sorted(_by_step(reference, "learning_rate")) == list(range(1, 25))


# --- kill -9 mid-training, then resume=True ----------------------------------------------------
VICTIM = textwrap.dedent("""
    import json, sys, time
    from transformers import TrainerCallback
    from modernbert_tasks import fine_tune

    class SlowAfterFirstSave(TrainerCallback):
        # gives the test a wide window to kill the run between two checkpoints
        saved = False
        def on_save(self, args, state, control, **kwargs):
            self.saved = True
        def on_step_end(self, args, state, control, **kwargs):
            if self.saved:
                time.sleep(0.5)

    model, data, out, args = json.loads(sys.argv[1])
    fine_tune("sst2", model, out, data_dir=data, callbacks=[SlowAfterFirstSave()], **args)
""")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended (code {proc.returncode}) before {path} appeared: "
                f"{proc.stderr.read()[-3000:] if proc.stderr else ''}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def test_kill_9_then_resume_matches_the_uninterrupted_run(
    reference, tiny_model_dir, data_dir, tmp_path, caplog
):
    out = tmp_path / "run"
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, json.dumps([str(tiny_model_dir), str(data_dir), str(out), ARGS])],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out / "checkpoint-6" / "trainer_state.json", victim)
    time.sleep(0.75)  # mid-way through step 7 or 8
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert json.loads((out / HOLDER_NAME).read_text())["pid"] == victim.pid  # left behind
    assert not (out / "model").exists()

    steps = StepLog()
    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        resumed = _train(tiny_model_dir, data_dir, out, resume=True, callbacks=[steps])
    assert f"Removing a stale lock in {out} left by process {victim.pid}" in caplog.text
    assert not (out / LOCK_NAME).exists()

    # it continued from checkpoint-6 and ran exactly the missing steps
    assert steps.steps == list(range(7, 25))
    # the scheduler was restored: step 7 runs at the peak the 6 warmup steps led to and the
    # rate decays from there (a fresh scheduler would warm up from 0 again); it matches the
    # uninterrupted run at every step
    lr, lr_ref = _by_step(resumed, "learning_rate"), _by_step(reference, "learning_rate")
    assert lr[7] == max(lr_ref.values()) == ARGS["learning_rate"] and lr[8] < lr[7]
    assert lr == pytest.approx(lr_ref, rel=1e-9)
    # optimizer state (Adam moments), RNG and data order were restored too: the same losses.
    # Observed: bitwise equal. The tolerance (1e-5 relative) only leaves room for float
    # reassociation if a kernel picked another blocking in the other process; a wrong batch
    # order or reset Adam moments moves the losses after step 6 by 1e-2 or more.
    loss, loss_ref = _by_step(resumed, "loss"), _by_step(reference, "loss")
    assert sorted(loss) == list(range(1, 25))
    assert loss == pytest.approx(loss_ref, rel=1e-5, abs=1e-7)
    assert resumed.metrics["accuracy"] == reference.metrics["accuracy"]
    assert resumed.metrics["loss"] == pytest.approx(reference.metrics["loss"], rel=1e-5, abs=1e-7)


# --- a crash during the final save -------------------------------------------------------------
def test_a_crash_in_the_final_save_keeps_the_previous_model(
    reference, tiny_model_dir, data_dir, tmp_path, monkeypatch
):
    import transformers.modeling_utils as modeling_utils

    out = tmp_path / "run"
    shutil.copytree(reference.model_path, out / "model")
    weights_before = (out / "model" / "model.safetensors").read_bytes()
    before = load_finetuned(out / "model", precision="fp32").predict(TEXTS)

    real_save = modeling_utils.safe_save_file

    def crash_half_way(tensors, filename, metadata=None):
        if ".model.partial" not in str(filename):  # checkpoints are written normally
            return real_save(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(b"\0" * 4096)  # half a file, then the process "dies"
        raise OSError(errno.EIO, "simulated crash while writing", str(filename))

    monkeypatch.setattr(modeling_utils, "safe_save_file", crash_half_way)
    with pytest.raises(OSError, match="simulated crash"):
        _train(tiny_model_dir, data_dir, out, max_steps=2, overwrite=True)
    monkeypatch.undo()

    assert (out / "model" / "model.safetensors").read_bytes() == weights_before
    after = load_finetuned(out / "model", precision="fp32").predict(TEXTS)
    assert after == before
    assert not (out / LOCK_NAME).exists()  # the failed run released its lock


# --- Ctrl-C ------------------------------------------------------------------------------------
def test_ctrl_c_checkpoints_and_exits_and_a_second_run_is_locked_out(tiny_model_dir, data_dir, tmp_path):
    out = tmp_path / "run"
    # two DataLoader workers: a terminal's Ctrl-C reaches every process of the group
    flags = [
        "--report-to",
        "none",
        "--max-length",
        "32",
        "--learning-rate",
        "1e-3",
        "--per-device-train-batch-size",
        "16",
        "--max-steps",
        "60",
        "--save-steps",
        "30",
        "--eval-steps",
        "30",
        "--logging-steps",
        "1",
        "--disable-tqdm",
        "true",
        "--dataloader-num-workers",
        "2",
    ]
    proc = subprocess.Popen(
        [
            *CLI,
            "train",
            "sst2",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(out),
            *flags,
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for line in proc.stdout:  # PrinterCallback prints one dict per logged step
            if "'loss'" in line:
                break
        else:
            raise AssertionError(f"no step was logged: {proc.stderr.read()[-3000:]}")

        # a second run in the same folder is refused while the first one trains
        with pytest.raises(RunLockedError) as err:
            _train(tiny_model_dir, data_dir, out)
        message = str(err.value)
        assert f"process {proc.pid} on host {socket.gethostname()!r}" in message
        assert f"delete the lock file {str(out / LOCK_NAME)!r}" in message

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    # said once: the workers inherit the handler but leave the decision to the main process
    assert stderr.count("Ctrl-C received: finishing the current step") == 1
    assert "Training interrupted by Ctrl-C at step" in stderr
    assert "resume=True" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    (checkpoint,) = [p for p in out.glob("checkpoint-*")]
    step = int(checkpoint.name.split("-")[1])
    assert 1 <= step < 30  # the interrupt's checkpoint, not a scheduled one
    assert (checkpoint / "trainer_state.json").is_file()
    assert not (out / "model").exists() and not (out / LOCK_NAME).exists()

    # the checkpoint resumes: only the remaining steps run
    steps = StepLog()
    resumed = _train(
        tiny_model_dir,
        data_dir,
        out,
        resume=True,
        callbacks=[steps],
        max_steps=60,
        save_steps=30,
        eval_steps=30,
    )
    assert steps.steps == list(range(step + 1, 61))
    assert (resumed.model_path / "model.safetensors").is_file()


def test_sigterm_checkpoints_exits_143_and_resumes_with_the_next_step(tiny_model_dir, data_dir, tmp_path):
    """What SLURM and Kubernetes send: treated like the first Ctrl-C."""
    out = tmp_path / "run"
    flags = [
        "--report-to",
        "none",
        "--max-length",
        "32",
        "--learning-rate",
        "1e-3",
        "--per-device-train-batch-size",
        "16",
        "--max-steps",
        "60",
        "--save-steps",
        "30",
        "--eval-steps",
        "30",
        "--logging-steps",
        "1",
        "--disable-tqdm",
        "true",
    ]
    proc = subprocess.Popen(
        [
            *CLI,
            "train",
            "sst2",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(data_dir),
            "--output-dir",
            str(out),
            *flags,
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:
            if "'loss'" in line:
                break
        else:
            raise AssertionError(f"no step was logged: {proc.stderr.read()[-3000:]}")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr[-3000:]
    assert stderr.count("SIGTERM received: finishing the current step") == 1
    assert "Training interrupted by SIGTERM at step" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    (checkpoint,) = [p for p in out.glob("checkpoint-*")]
    step = int(checkpoint.name.split("-")[1])
    assert 1 <= step < 30 and (checkpoint / "trainer_state.json").is_file()
    steps = StepLog()
    _train(
        tiny_model_dir,
        data_dir,
        out,
        resume=True,
        callbacks=[steps],
        max_steps=60,
        save_steps=30,
        eval_steps=30,
    )
    assert steps.steps == list(range(step + 1, 61))  # continues with the next step


def test_second_ctrl_c_aborts_at_once_and_the_handler_is_restored():
    from transformers import TrainerControl, TrainerState

    callback = GracefulInterrupt()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="second Ctrl-C") as err:
        with stop_on_sigint(callback):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs between bytecodes
            assert callback.requested
            control = callback.on_step_end(None, TrainerState(global_step=5), TrainerControl())
            assert control.should_save and control.should_training_stop
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            raise AssertionError("the second Ctrl-C did not interrupt")
    assert not isinstance(err.value, TrainingInterrupted)  # no checkpoint promised
    assert signal.getsignal(signal.SIGINT) is before


# --- two runs, one folder: the lock ------------------------------------------------------------
KILLED_HOLDER = textwrap.dedent("""
    import os, sys
    from modernbert_tasks.training.locking import RunLock
    held = RunLock(sys.argv[1]).acquire()  # kept referenced: a collected lock releases
    os.kill(os.getpid(), 9)  # dies holding the lock: nothing is released
""")


def _lock_of_a_killed_process(folder: Path) -> int:
    """The lock (filelock's marker and our holder record) a SIGKILLed run leaves behind."""
    proc = subprocess.run([sys.executable, "-c", KILLED_HOLDER, str(folder)], env=ENV)
    assert proc.returncode == -signal.SIGKILL
    holder = json.loads((folder / HOLDER_NAME).read_text())
    assert (folder / LOCK_NAME).exists()
    return holder["pid"]


def test_a_stale_lock_of_a_dead_process_is_cleared(tmp_path, caplog):
    pid = _lock_of_a_killed_process(tmp_path)
    with caplog.at_level(logging.WARNING, logger="modernbert_tasks"):
        with RunLock(tmp_path):
            assert json.loads((tmp_path / HOLDER_NAME).read_text())["pid"] == os.getpid()
    assert f"left by process {pid} on host" in caplog.text and "no longer running" in caplog.text
    assert not (tmp_path / LOCK_NAME).exists() and not (tmp_path / HOLDER_NAME).exists()


def test_a_reused_pid_does_not_keep_a_lock_alive(tmp_path):
    # the marker names our own PID, with the dead process's start time: another process held it
    dead = _lock_of_a_killed_process(tmp_path)
    marker = tmp_path / LOCK_NAME
    marker.write_text(marker.read_text().replace(str(dead), str(os.getpid()), 1))
    with RunLock(tmp_path):
        pass


def test_a_live_holder_is_named_and_its_lock_survives(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError) as err:
            RunLock(tmp_path).acquire()
        message = str(err.value)
        assert f"process {os.getpid()} on host {socket.gethostname()!r}" in message
        assert "pass another output_dir" in message
        assert (tmp_path / LOCK_NAME).exists()  # the refused run removed nothing
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_not_guessed_at(tmp_path):
    _lock_of_a_killed_process(tmp_path)
    here = socket.gethostname()
    for name in (LOCK_NAME, HOLDER_NAME):  # as if a run on gpu-node-7 held it
        file = tmp_path / name
        file.write_text(file.read_text().replace(here, "gpu-node-7"))
    with pytest.raises(RunLockedError) as err:
        RunLock(tmp_path).acquire()
    assert "on host 'gpu-node-7'" in str(err.value)
    assert "cannot be checked from here" in str(err.value)
    assert f"delete the lock file {str(tmp_path / LOCK_NAME)!r}" in str(err.value)


def test_an_unreadable_lock_is_refused_until_deleted(tmp_path):
    """Fail closed: an empty marker may be a run writing it right now, so it is never broken
    by a guess; the message names the file to delete."""
    lock = tmp_path / LOCK_NAME
    lock.write_text("")
    with pytest.raises(RunLockedError, match="an unknown process") as err:
        RunLock(tmp_path).acquire()
    assert f"delete the lock file {str(lock)!r}" in str(err.value)
    lock.unlink()  # what the message says to do
    with RunLock(tmp_path):
        pass


# --- a full disk while checkpointing -----------------------------------------------------------
def test_disk_full_while_checkpointing_is_reported_and_resumable(
    tiny_model_dir, data_dir, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    real = Trainer._save_optimizer_and_scheduler

    def disk_full_at_step_12(self, output_dir):
        if self.state.global_step == 12:
            partial = Path(output_dir) / "optimizer.pt"
            partial.write_bytes(b"\0" * 1024)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial))
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", disk_full_at_step_12)
    with pytest.raises(OutputWriteError) as err:
        _train(tiny_model_dir, data_dir, out)
    monkeypatch.undo()
    message = str(err.value)
    assert f"writing checkpoint {str(out / 'checkpoint-12')!r} failed" in message
    assert "the disk is full" in message and "No space left on device" in message
    assert "'checkpoint-6', is intact" in message
    assert "Free space on the disk" in message and "resume=True" in message
    assert isinstance(err.value, OSError)

    # the half-written checkpoint is gone, the earlier one is whole, the lock is released
    assert not (out / "checkpoint-12").exists()
    assert (out / "checkpoint-6" / "trainer_state.json").is_file()
    assert not (out / LOCK_NAME).exists()
    steps = StepLog()
    resumed = _train(tiny_model_dir, data_dir, out, resume=True, callbacks=[steps])
    assert steps.steps == list(range(7, 25))
    assert resumed.metrics["accuracy"] >= 0.9


LIMITED = textwrap.dedent("""
    import json, resource, signal, sys
    from transformers import TrainerCallback
    from modernbert_tasks import fine_tune
    from modernbert_tasks.training.checkpoints import OutputWriteError

    class CapFileSizeAfterFirstSave(TrainerCallback):
        # from the second checkpoint on, the OS refuses writes past 16 MiB per file: the model
        # (13 MiB) fits, the optimizer state (26 MiB) does not
        def on_save(self, args, state, control, **kwargs):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, not the process
            resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 2**20, resource.RLIM_INFINITY))

    model, data, out, args = json.loads(sys.argv[1])
    try:
        fine_tune("sst2", model, out, data_dir=data, callbacks=[CapFileSizeAfterFirstSave()],
                  **args)
    except OutputWriteError as exc:
        print(json.dumps({"error": str(exc), "cause": type(exc.__cause__).__name__}))
""")


@pytest.mark.usefixtures("shared_tokenizer_dir")  # written for the real ModernBERT tokenizer in ../shared
def test_a_real_failed_write_mid_checkpoint_is_reported(tiny_model_dir, data_dir, tmp_path):
    """Not a mock: the kernel refuses the write (RLIMIT_FSIZE), and torch.save fails with its
    own cryptic error, as it does on a full disk."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", LIMITED, json.dumps([str(tiny_model_dir), str(data_dir), str(out), ARGS])],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    message = result["error"]
    assert result["cause"] == "RuntimeError"  # torch's PyTorchStreamWriter
    assert f"writing checkpoint {str(out / 'checkpoint-12')!r} failed" in message
    assert "MiB free" in message and "resume=True" in message
    assert "'checkpoint-6', is intact" in message
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-6"]
    assert (out / "checkpoint-6" / "trainer_state.json").is_file()


# --- load: 50,000 texts in one call ------------------------------------------------------------
LOAD = textwrap.dedent("""
    import json, random, sys, time
    import torch
    torch.set_num_threads(1)
    from modernbert_tasks import load_finetuned
    from modernbert_tasks.testing import make_sentiment_rows

    def peak_mib():  # the process's peak resident set size (VmHWM), in MiB
        status = open("/proc/self/status").read()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024

    def reset_peak():  # Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")

    model = load_finetuned(sys.argv[1], precision="fp32")
    rng = random.Random(0)
    rows = make_sentiment_rows(50_000, seed=5)
    # each sentence 1 to 16 times over: ~5 tokens to ~3x max_length, the label unchanged
    texts = [" . ".join([text] * rng.randint(1, 16)) for text, _ in rows]
    model.predict(texts[:256])  # warm up: lazy allocations are not growth
    reset_peak()
    base = peak_mib()
    start = time.perf_counter()
    predictions = model.predict(texts, show_progress=False)  # default batch size
    seconds = time.perf_counter() - start
    grown = peak_mib() - base
    sample = rng.sample(range(len(texts)), 300)
    alone = model.predict([texts[i] for i in sample], batch_size=5)
    print(json.dumps({
        "n": len(predictions), "base_mib": base, "growth_mib": grown, "seconds": seconds,
        "accuracy": sum(p["label"] == ("negative", "positive")[y]
                        for p, (_, y) in zip(predictions, rows)) / len(rows),
        "max_diff": max(abs(predictions[i]["probabilities"]["positive"]
                            - a["probabilities"]["positive"]) for i, a in zip(sample, alone)),
        "words": [min(len(t.split()) for t in texts), max(len(t.split()) for t in texts)],
    }))
""")


@pytest.mark.slow
def test_predicting_50k_texts_keeps_memory_bounded_and_order(reference):
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, str(reference.model_path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"50k predict: {result['seconds']:.1f}s ({time.monotonic() - start:.1f}s in all), "
        f"peak RSS growth {result['growth_mib']:.0f} MiB over {result['base_mib']:.0f} MiB"
    )
    assert result["n"] == 50_000
    assert result["words"][0] <= 5 and result["words"][1] >= 100  # really mixed lengths
    # bounded: the 50k results and logits take ~30 MiB; one 8,192-text chunk is tokenized
    # at a time, so memory does not grow with the number of texts
    assert result["growth_mib"] < 400
    # order: labels known by construction (shuffled outputs would score ~0.5) ...
    assert result["accuracy"] >= 0.9
    # ... and each sampled text's prediction equals predicting it in a small separate call
    assert result["max_diff"] < 1e-4


# --- a diverging run -----------------------------------------------------------------------------
class PoisonAt(TrainerCallback):
    """Makes the weights NaN after step `step`, as a learning rate far too high does."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            import torch

            with torch.no_grad():
                for param in model.parameters():
                    param.fill_(float("nan"))


def _checkpoints(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("checkpoint-*")) if out.is_dir() else []


def test_a_nan_loss_stops_training_at_the_first_logging_step(tiny_model_dir, data_dir, tmp_path):
    from modernbert_tasks import TrainingDiverged

    out = tmp_path / "run"
    with pytest.raises(
        TrainingDiverged,
        match=r"the loss became nan at step 5; the last finite "
        r"loss was .* at step 4\. learning_rate=0\.001 is probably too high: pass "
        r"a lower one, e\.g\. learning_rate=3e-5\. No checkpoint",
    ):
        _train(tiny_model_dir, data_dir, out, callbacks=[PoisonAt(4)])
    assert _checkpoints(out) == [] and not (out / "model").exists()


def test_no_checkpoint_of_non_finite_weights_and_the_earlier_model_survives(
    reference, tiny_model_dir, data_dir, tmp_path
):
    from modernbert_tasks import TrainingDiverged

    out = Path(shutil.copytree(reference.output_dir, tmp_path / "run"))
    before = {p.name: p.read_bytes() for p in (out / "model").iterdir()}
    # no logging step sees it (every 100 steps): the check before the step-6 save does
    with pytest.raises(TrainingDiverged, match=r"parameter '.*' became non-finite at step 6"):
        _train(tiny_model_dir, data_dir, out, overwrite=True, logging_steps=100, callbacks=[PoisonAt(6)])
    assert _checkpoints(out) == []  # overwrite removed the earlier ones; none was written
    assert {p.name: p.read_bytes() for p in (out / "model").iterdir()} == before


def test_cli_learning_rate_above_one_is_refused_before_anything(tiny_model_dir, data_dir, tmp_path, caplog):
    from modernbert_tasks.testing import run_cli

    out = tmp_path / "run"
    code, _, err = astuple(
        run_cli(
            "train",
            "sst2",
            "--model",
            tiny_model_dir,
            "--data-dir",
            data_dir,
            "--output-dir",
            out,
            "--learning-rate",
            "1e9",
        )
    )
    assert code == 2 and "--learning-rate 1000000000.0 is out of range" in err
    assert "Fine-tuning uses 1e-5 to 1e-4" in err and not out.exists()
