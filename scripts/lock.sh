#!/usr/bin/env bash
# Regenerate requirements/lock.txt: the exact versions the tests (scripts/test.sh) and the demo
# (scripts/demo.sh) install. Resolved by `uv pip compile` from pyproject.toml (runtime + test extras),
# newest releases first. torch is resolved as the pinned CPU build (TORCH_PIN) so that no CUDA packages
# enter the lock, and left out of the file: scripts/_venv.sh installs it on its own first.
#
# When to run: after changing a dependency in pyproject.toml, or when scripts/test-latest.sh (the canary)
# passes on newer releases than the lock holds. Then run scripts/test.sh (it rebuilds .venv because the
# lock changed) and commit the lock with the test counts in the message.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_PIN="${TORCH_PIN:-2.13.0+cpu}"
FIND_LINKS="${FIND_LINKS:-/opt/wheels}"   # where the CPU torch wheel lies on these machines
command -v uv >/dev/null || python3 -m pip install -q uv
mkdir -p requirements
uv pip compile pyproject.toml --extra test --python-version 3.11 \
  ${FIND_LINKS:+--find-links "$FIND_LINKS"} \
  --override <(echo "torch==$TORCH_PIN") --no-emit-package torch \
  --custom-compile-command "bash scripts/lock.sh" \
  -o requirements/lock.txt "$@"
