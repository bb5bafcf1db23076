#!/usr/bin/env bash
# Install spkpeft with its test extras in a fresh virtual environment, then lint and run the test suite.
# torch is pinned here (a local CPU wheel on CI machines); the package itself only asks for a range.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SPKPEFT_VENV:-.venv}"
python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ruff check .
python -m pytest -q "$@"
