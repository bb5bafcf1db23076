# Sourced by scripts/demo.sh and scripts/test.sh: create (or reuse) the virtual environment and install
# spkpeft into it. torch is pinned here (a local CPU wheel on these machines, seconds to install); the
# package itself only asks for a range, so users keep their own CUDA builds.
# Usage: . scripts/_venv.sh EXTRAS   (EXTRAS: "" or "test")
VENV="${SPKPEFT_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".${1:+[$1]}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
