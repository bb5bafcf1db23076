#!/usr/bin/env bash
# The canary: install the NEWEST releases of every dependency (no lock; torch stays the local CPU build
# SPKPEFT_TORCH, default 2.13.0, unless you set it) into a fresh .venv-latest and run the test suite, so a
# breaking upstream release is seen before users see it.
# When to run: weekly, and before every release or lock bump. If it passes on newer versions than
# requirements/lock.txt holds, bump the lock: `bash scripts/lock.sh`, then `bash scripts/test.sh`, and
# commit the lock. If it fails, fix the code (or, until then, cap the offending range in pyproject.toml).
# Usage: bash scripts/test-latest.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_pip.sh
VENV="${SPKPEFT_VENV:-.venv-latest}"
TORCH_VERSION="${SPKPEFT_TORCH:-2.13.0}"
new_venv "$VENV" "$TORCH_VERSION"
qpip "$VENV/bin/python" install --upgrade --upgrade-strategy eager -e ".[test]"
run_suite "$VENV" "$@"
