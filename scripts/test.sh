#!/usr/bin/env bash
# Install spkpeft with its test extras in a virtual environment (.venv), then lint and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
ruff check .
python -m pytest -q "$@"
