#!/usr/bin/env bash
# Install spkpeft with its test extras in a virtual environment (.venv), then lint and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
ruff check .
python -m pytest -q "$@"
