# Sourced by the install scripts (_venv.sh, test-lowest.sh, test-latest.sh): the pieces they share.

# `qpip PYTHON ARGS...` runs `PYTHON -m pip -q ARGS...` without the machine-specific "Location ... is
# ignored" warnings that a local pip.conf index can print per package.
qpip() {
  local py="$1"
  shift
  "$py" -m pip -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# `new_venv DIR TORCH_VERSION`: a fresh virtual environment in DIR (any old one removed) with an up-to-date
# pip and torch==TORCH_VERSION (the local CPU wheel on these machines).
new_venv() {
  rm -rf "$1"
  python3 -m venv "$1"
  qpip "$1/bin/python" install --upgrade pip
  qpip "$1/bin/python" install "torch==$2"
}

# `test_env`: the environment every test and demo run uses (no hub access; two threads by default).
test_env() {
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
}

# `run_suite DIR PYTEST_ARGS...`: activate DIR, print the versions that matter, run the test suite.
run_suite() {
  . "$1/bin/activate"
  shift
  test_env
  python -m pip list 2>/dev/null | grep -iE '^(torch|transformers|peft|accelerate|lhotse|numpy) ' >&2
  python -m pytest -q -p no:cacheprovider "$@"
}
