#!/usr/bin/env bash
# The GPU benchmark, in one command: the recipe against fine_tune's defaults on the
# ModernBERT-large architecture (random init from config.json), on one CUDA GPU.
# Prints samples/s, tokens/s and achieved TFLOP/s as a share of the card's bf16 peak.
# Then one ablation at batch ABLATE_BATCH: fine_tune's defaults against one lever at a time
# (fp32, compile with shape buckets, compile with CUDA graphs, unfused AdamW, the per-step
# NaN-check sync), interleaved in one run, so each row's ratio is that lever's worth.
# Budget: under 8 minutes on an H100, package install included (BUDGET_S caps the ablation).
#
# Before copying the repository to the GPU machine (../shared is not copied), run once here:
#     bash bench/gpu.sh --prepare        # copies config + tokenizer + 5,000 SST-2 rows
# into bench/assets/ (git-ignored; pass it along, e.g. carry=["bench/assets"]). Then there:
#     bash bench/gpu.sh
# Settings (environment): MODEL_DIR (config.json + tokenizer; or the first argument),
# DATA_DIR (holds train.tsv; synthetic SST-2-length sentences when absent), DEVICE (cuda|cpu:
# cpu only checks the code path), BATCH_SIZES ("16 64": 16 is the recipe's), SAMPLES, STEPS,
# RECIPE_STEPS, WARMUP, ROUNDS, CONFIGS, WHEELS_DIR (wheels to install offline if missing),
# ABLATE (';'-separated fine_tune argument sets; "" skips the ablation), ABLATE_BATCH,
# ABLATE_ROUNDS, ABLATE_WARMUP, BUDGET_S (seconds for the whole script: the ablation gets
# what is left),
# SKIP_INSTALL=1 (the package is already installed: the CPU smoke test uses it).
set -euo pipefail
cd "$(dirname "$0")/.."

ASSETS=bench/assets
if [[ "${1:-}" == "--prepare" ]]; then
    SHARED=${MODERNBERT_TASKS_SHARED:-../shared}
    mkdir -p "$ASSETS/modernbert-embed-large" "$ASSETS/sst2"
    cp "$SHARED"/models/modernbert-embed-large/*.json "$ASSETS/modernbert-embed-large/"
    head -n 5001 "$SHARED/data/sst2/train.tsv" > "$ASSETS/sst2/train.tsv"
    du -sh "$ASSETS"
    echo "prepared $ASSETS; carry it to the GPU machine with the repository"
    exit 0
fi

MODEL_DIR=${1:-${MODEL_DIR:-$ASSETS/modernbert-embed-large}}
DATA_DIR=${DATA_DIR:-$ASSETS/sst2}
DEVICE=${DEVICE:-cuda}
BATCH_SIZES=${BATCH_SIZES:-16 64}
SAMPLES=${SAMPLES:-4096}
STEPS=${STEPS:-40}
RECIPE_STEPS=${RECIPE_STEPS:-20}
WARMUP=${WARMUP:-5}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-recipe,dynamic,ours}
PYTHON=${PYTHON:-python}
if [[ "$DEVICE" == "cpu" ]]; then  # the smoke path: one cheap lever, no compiling
    ABLATE=${ABLATE-precision=fp32}
else
    ABLATE=${ABLATE-precision=fp32;precision=bf16-weights;compile=True;compile=True,compile_mode=reduce-overhead;optim=adamw_torch;logging_nan_inf_filter=True}
fi
ABLATE_BATCH=${ABLATE_BATCH:-16}
ABLATE_ROUNDS=${ABLATE_ROUNDS:-3}
# compiling happens in the warm-up: widths are padded to 16/32/64/128, so 4 graphs at most
ABLATE_WARMUP=${ABLATE_WARMUP:-$WARMUP}
BUDGET_S=${BUDGET_S:-460}
START=$SECONDS

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "nvidia-smi: not available"
check_packages() {
    "$PYTHON" - <<'EOF'
import importlib, sys
missing, found = [], []
for name in ("torch", "transformers", "datasets", "accelerate", "pluggy", "numpy", "sklearn"):
    try:
        found.append(f"{name} {importlib.import_module(name).__version__}")
    except Exception:
        missing.append(name)
import_ok = not missing
if import_ok:
    import transformers
    if int(transformers.__version__.split(".")[0]) < 5:
        missing.append(f"transformers>=5 (found {transformers.__version__})")
print("found:", ", ".join(found) or "nothing")
if missing:
    print("MISSING:", ", ".join(missing))
    sys.exit(3)
EOF
}
if ! check_packages; then
    WHEELS_DIR=${WHEELS_DIR:-$ASSETS/wheels}
    if [[ -d "$WHEELS_DIR" ]]; then
        echo "installing the wheels in $WHEELS_DIR offline"
        "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS_DIR" "$WHEELS_DIR"/*.whl
        check_packages
    else
        echo "FAIL: packages listed above are missing and there is no $WHEELS_DIR to install"
        echo "them from (no network here). Carry wheels for them (pip download ... -d $WHEELS_DIR)."
        exit 3
    fi
fi

echo "== package"
if [[ -n "${SKIP_INSTALL:-}" ]]; then
    echo "SKIP_INSTALL set: using the modernbert-tasks already importable"
elif "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . 2>/tmp/gpu-pip.log; then
    echo "installed modernbert-tasks (editable, --no-deps)"
else
    # the package is pure Python and registers its built-in tasks without entry points too
    echo "pip install failed ($(tail -n 1 /tmp/gpu-pip.log)); using PYTHONPATH=src"
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi

if [[ "$DEVICE" == "cpu" ]]; then
    export CUDA_VISIBLE_DEVICES=""  # the Trainer and fine_tune then pick the CPU
elif ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "FAIL: DEVICE=cuda but torch sees no CUDA GPU (torch.cuda.is_available() is False)."
    echo "Use a CUDA build of torch, or DEVICE=cpu to check the code path only."
    exit 4
fi
if [[ ! -f "$MODEL_DIR/config.json" ]]; then
    echo "FAIL: $MODEL_DIR has no config.json. Run 'bash bench/gpu.sh --prepare' where"
    echo "../shared exists and carry bench/assets along, or set MODEL_DIR."
    exit 2
fi
DATA_ARGS=(--synthetic)
if [[ -f "$DATA_DIR/train.tsv" ]]; then
    DATA_ARGS=(--data-dir "$DATA_DIR")
else
    echo "no $DATA_DIR/train.tsv: synthetic sentences with SST-2's length distribution"
fi

WORKDIR=$(mktemp -d /tmp/bench-gpu-XXXXXX)
trap 'rm -rf "$WORKDIR"' EXIT  # a built ModernBERT-large and its runs take gigabytes
for BATCH in $BATCH_SIZES; do
    echo "== batch size $BATCH ($((SECONDS - START)) s so far)"
    "$PYTHON" bench/train_throughput.py --model "$MODEL_DIR" "${DATA_ARGS[@]}" \
        --workdir "$WORKDIR" --samples "$SAMPLES" --batch-size "$BATCH" --steps "$STEPS" \
        --recipe-steps "$RECIPE_STEPS" --warmup "$WARMUP" --rounds "$ROUNDS" \
        --configs "$CONFIGS" 2>&1 | grep -v -E "it/s\]|examples/s\]|^\{'"
done
if [[ -n "$ABLATE" ]]; then
    LEFT=$((BUDGET_S - (SECONDS - START)))
    echo "== ablation at batch size $ABLATE_BATCH ($((SECONDS - START)) s so far; ${LEFT} s left)"
    if (( LEFT < 30 )); then
        echo "SKIP: under 30 s of BUDGET_S=$BUDGET_S left; raise BUDGET_S or lower ROUNDS"
    else
        # round 1 of each compiled row pays the compilation; rounds 2+ hit the inductor cache
        timeout "$LEFT" "$PYTHON" bench/train_throughput.py --model "$MODEL_DIR" "${DATA_ARGS[@]}" \
            --workdir "$WORKDIR" --samples "$SAMPLES" --batch-size "$ABLATE_BATCH" \
            --warmup "$ABLATE_WARMUP" --rounds "$ABLATE_ROUNDS" --configs ours \
            --ablate "$ABLATE" 2>&1 | grep -v -E "it/s\]|examples/s\]|^\{'" \
            || echo "ablation stopped (exit ${PIPESTATUS[0]}): BUDGET_S=$BUDGET_S reached"
    fi
fi
echo "== done in $((SECONDS - START)) s"
