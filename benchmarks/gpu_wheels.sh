#!/usr/bin/env bash
# Fetch, HERE (a machine with PyPI), the wheels that the GPU machine's image lacks for
# benchmarks/gpu_session.sh, into .whl/ (git-ignored), for Python 3.12 on x86-64 Linux.
#
# The GPU image (see /work/.library/device/KINDS.md) has torch 2.11, transformers 5.17, accelerate,
# numpy, scipy, PyYAML, safetensors, tqdm and some peft; it lacks what spkpeft imports on the training
# path: soundfile (+ cffi, pycparser), soxr, omegaconf. peft is carried too, pinned to the lock's version.
# Versions are the lock's (requirements/lock.txt). Then run gpu_session.sh there with `.whl` carried:
#
#   bash benchmarks/gpu_wheels.sh                       # here, once (about 4 MB)
#   device run, carry [".whl"], command: bash benchmarks/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
lock() { grep -i "^$1==" requirements/lock.txt | head -1; }
PKGS=()
for name in soundfile cffi pycparser soxr omegaconf peft; do
  spec=$(lock "$name")
  [ -n "$spec" ] || { echo "gpu_wheels.sh: $name is not in requirements/lock.txt" >&2; exit 1; }
  PKGS+=("$spec")
done
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl "${PKGS[@]}"
ls -l .whl
