#!/usr/bin/env bash
# Install spkpeft in a virtual environment (.venv) and run the no-download demo (about 3-5 minutes on
# 2 CPU cores): synthetic corpus -> content pre-trained tiny WavLM -> frozen vs UniPET-SPK -> report.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
spkpeft demo "$@"
