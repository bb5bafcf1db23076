#!/usr/bin/env bash
# Run the test suite on the OLDEST versions pyproject.toml declares: every direct dependency at its
# lower bound (`uv pip compile --resolution lowest-direct`), in its own environment (.venv-lowest, built
# fresh each run). If this fails, either fix the code or raise the bound in pyproject.toml, so that the
# declared ranges stay true. torch is the exception: these machines only have the CPU wheel of
# SPKPEFT_TORCH (default 2.13.0) locally; set SPKPEFT_TORCH to the lower bound (e.g. 2.11.0) on a machine
# that can download it (the PyPI Linux wheel is a CUDA build of several GB).
# Usage: bash scripts/test-lowest.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_pip.sh
VENV="${SPKPEFT_VENV:-.venv-lowest}"
TORCH_VERSION="${SPKPEFT_TORCH:-2.13.0}"
command -v uv >/dev/null || python3 -m pip install -q uv
new_venv "$VENV" "$TORCH_VERSION"
torch_installed="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
torch_installed="${torch_installed%%+cu*}"  # a PyPI CUDA wheel reports +cuNNN, which no index lists
mkdir -p "$VENV/spkpeft"
uv pip compile pyproject.toml --extra test --resolution lowest-direct --python-version 3.11 \
  --find-links /opt/wheels --override <(echo "torch==$torch_installed") --no-emit-package torch \
  --quiet -o "$VENV/spkpeft/lowest.txt"
qpip "$VENV/bin/python" install -r "$VENV/spkpeft/lowest.txt"
qpip "$VENV/bin/python" install --no-deps -e .
run_suite "$VENV" "$@"
