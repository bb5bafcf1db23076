#!/usr/bin/env bash
# Issue 17's GPU measurement in one call (about 6-8 minutes on one H100; stops itself before 9.5):
#   1. benchmarks/train_step.py on WavLM Large and WavLM Base+ (random weights), --device cuda --amp bf16,
#      batch 64 x 3 s, median of 8 steps, SDPA attention, eager: every method of the issue's table, the
#      hand-written transformers / transformers+peft peers, MFU, inference rows
#      -> train_step_cuda.{json,md} (rewritten after each row, so a timeout keeps what was measured);
#   2. if at least 150 s are left: the same with --compile (train.compile) on WavLM Large for full, lora,
#      unipet -> train_step_cuda_compile.{json,md}.
# Results go to $OUT when it is set (the device tool brings back what is there), else benchmarks/results/;
# logs beside them. Commit the files as benchmarks/results/train_step_cuda.{json,md} (and _compile).
#
# Older libraries, no network. The GPU image has torch 2.11 and transformers 5.17 (spkpeft's lower
# bounds) but not every package spkpeft imports. Carry the missing ones as wheels: HERE (with PyPI) run
#     bash benchmarks/gpu_wheels.sh          # soundfile, cffi, pycparser, soxr, omegaconf, peft -> .whl/
# then call the device tool with carry [".whl"] and the command `bash benchmarks/gpu_session.sh`.
# This script installs .whl/*.whl into /tmp/site when the folder is there. A package still missing stops
# the run at the import check below, naming it: add it to gpu_wheels.sh (its lock version).
#
# SMOKE=1 runs pass 1 on the CPU with tiny presets in a few minutes (a check of this script; the compile
# pass is skipped there: inductor builds C++ for minutes on a small CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEST=${OUT:-$ROOT/benchmarks/results}
mkdir -p "$DEST"
LOG=$DEST/gpu_session.log
exec > >(tee "$LOG") 2>&1
START=$SECONDS
BUDGET=${BUDGET:-570}  # seconds for the whole script (the device tool's limit is 600 per command)

if [ "${SMOKE:-0}" != 1 ] && compgen -G ".whl/*.whl" >/dev/null; then  # (wheels are for the GPU's Python)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || { echo "gpu_session.sh: installing the carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$ROOT/src:$ROOT/benchmarks${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1

python3 - <<'EOF' || exit 1
import importlib, sys
import torch, transformers, peft
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
      f"peft {peft.__version__}, cuda {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
for mod in ("spkpeft.train.setup", "spkpeft.train.compile", "train_step_peers"):
    try:
        importlib.import_module(mod)
    except ImportError as e:  # name the missing package: carry it (gpu_wheels.sh)
        sys.exit(f"gpu_session.sh: importing {mod} failed: {e}")
EOF

# one tiny CPU worker end to end (every import a GPU worker makes) before any GPU time is spent
python3 benchmarks/train_step.py --worker lora --backbone tiny-wavlm --device cpu --batch-size 1 --steps 1 \
  --crop-seconds 0.5 --method-json '{}' >/dev/null || { echo "gpu_session.sh: the tiny CPU check failed"; exit 1; }

if [ "${SMOKE:-0}" = 1 ]; then
  COMMON=(--device cpu --batch-size 2 --crop-seconds 1 --steps 1 --threads 1)
  LARGE=tiny-wavlm; BASE=tiny-hubert
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  COMMON=(--device cuda --amp bf16 --batch-size 64 --crop-seconds 3 --steps 8 --threads 8)
  LARGE=wavlm-large; BASE=wavlm-base-plus
fi
left() { echo $((BUDGET - (SECONDS - START))); }
upto() { local l; l=$(left); echo $((l < $1 ? l : $1)); }  # seconds for a pass: at most $1

# 1. the committed table: both backbones, eager (the issue's methods; Base+ the ones it names)
timeout "$(upto 330)" python3 benchmarks/train_step.py "${COMMON[@]}" --backbone "$LARGE" \
  --methods full frozen lora spectral deep_prompt unipet dora --peers hf_full hf_peft_lora \
  --out "$DEST/train_step_cuda" || echo "gpu_session.sh: $LARGE pass stopped (rc $?)"
timeout "$(upto 200)" python3 benchmarks/train_step.py "${COMMON[@]}" --backbone "$BASE" \
  --methods full frozen lora unipet inner_inter --peers hf_full hf_peft_lora \
  --out "$DEST/train_step_cuda_base" || echo "gpu_session.sh: $BASE pass stopped (rc $?)"
python3 benchmarks/train_step.py --merge "$DEST/train_step_cuda" "$DEST/train_step_cuda_base" \
  || echo "gpu_session.sh: merging the two tables failed"

# 2. torch.compile, if there is time
if [ "${SMOKE:-0}" = 1 ]; then
  echo "gpu_session.sh: SMOKE=1, compile pass skipped"
elif [ "$(left)" -ge 150 ]; then
  timeout "$(left)" python3 benchmarks/train_step.py "${COMMON[@]}" --backbone "$LARGE" --compile \
    --methods full lora unipet --out "$DEST/train_step_cuda_compile" \
    || echo "gpu_session.sh: compile pass stopped (rc $?)"
else
  echo "gpu_session.sh: $(left) s left, compile pass skipped"
fi
echo "gpu_session.sh: done in $((SECONDS - START)) s; files in $DEST:"
ls -l "$DEST"
