"""The same fine_tune call under torchrun: two CPU processes (gloo) train one model with DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from modernbert_tasks import fine_tune

    model, data, out, report, compile = sys.argv[1:6]
    result = fine_tune("sst2", model_name=model, data_dir=data, output_dir=out,
                       report_to="none", learning_rate=1e-3, max_steps=6, eval_steps=3,
                       per_device_train_batch_size=8, disable_tqdm=True,
                       compile=compile == "compile")
    rank = os.environ["RANK"]
    with open(f"{report}.{rank}", "w") as fh:
        json.dump({"model_path": str(result.model_path), "steps": result.log_history[-1]}, fh)
""")


@pytest.mark.slow
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compile=True"])
def test_torchrun_two_processes_train_one_model(compiled, tiny_model_dir, sentiment_dir, tmp_path):
    """compile=True is the fast path (compiled model and clip): it trains under DDP too."""
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out, report = tmp_path / "run", tmp_path / "report"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    # its own process group, so a hang kills the workers too, not only torchrun
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            str(tiny_model_dir),
            str(sentiment_dir),
            str(out),
            str(report),
            "compile" if compiled else "eager",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in 240 s:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    assert "torch.compile failed" not in output  # compiled, not the eager fallback

    results = [json.loads((tmp_path / f"report.{rank}").read_text()) for rank in (0, 1)]
    assert results[0]["model_path"] == results[1]["model_path"] == str(out / "model")
    # one model, written once, by the main process: no staging folders, one manifest
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert len(list(out.rglob("modernbert_tasks.json"))) == 1
    manifest = json.loads((out / "model" / "modernbert_tasks.json").read_text())
    assert manifest["training"]["world_size"] == 2
    assert manifest["training"]["global_step"] == 6
    assert (out / "model" / "model.safetensors").is_file()


def _accelerate(*launch_args, model, data, out, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launch_args,
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "modernbert_tasks",
        "train",
        "sst2",
        "--model",
        str(model),
        "--data-dir",
        str(data),
        "--output-dir",
        str(out),
        "--max-train-samples",
        "64",
        "--num-train-epochs",
        "1",
        "--report-to",
        "none",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"accelerate launch did not finish in {timeout} s:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    manifest = json.loads((out / "model" / "modernbert_tasks.json").read_text())
    return manifest["training"], output


@pytest.mark.slow
def test_accelerate_launch_multi_gpu_runs_two_cpu_processes(tiny_model_dir, sentiment_dir, tmp_path):
    """The command docs/distributed.md gives for several CPU processes really starts two."""
    training, output = _accelerate(
        "--multi_gpu", model=tiny_model_dir, data=sentiment_dir, out=tmp_path / "run"
    )
    assert training["world_size"] == 2
    assert training["global_step"] == 2  # 64 rows / (16 per process x 2 processes)
    assert "this run is the only one" not in output


@pytest.mark.slow
def test_accelerate_launch_cpu_says_it_runs_one_process(tiny_model_dir, sentiment_dir, tmp_path):
    training, output = _accelerate("--cpu", model=tiny_model_dir, data=sentiment_dir, out=tmp_path / "run")
    assert training["world_size"] == 1 and training["global_step"] == 4  # 64 rows / 16
    assert "asked for several processes, but this run is the only one (world size 1)" in output
    assert "accelerate launch --multi_gpu --num_processes N" in output
