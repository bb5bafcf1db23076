# Sourced by scripts/demo.sh and scripts/test.sh: make sure the virtual environment (.venv) holds exactly
# requirements/lock.txt, then install spkpeft into it. The environment is built anew whenever the lock (or
# the Python) changes, so a green run never depends on what an earlier run left installed. torch is pinned
# here (a local CPU wheel on these machines, seconds to install); the package itself only asks for ranges,
# so users keep their own builds. Regenerate the lock with scripts/lock.sh.
# Usage: . scripts/_venv.sh
. scripts/_pip.sh
VENV="${SPKPEFT_VENV:-.venv}"
TORCH_VERSION="${SPKPEFT_TORCH:-2.13.0}"
LOCK=requirements/lock.txt
_stamp="$(cat "$LOCK" scripts/_venv.sh scripts/_pip.sh | sha256sum | cut -c1-16)-$(python3 -c 'import sys; print(sys.version.split()[0])')-torch$TORCH_VERSION"
if [ ! -f "$VENV/.spkpeft-lock" ] || [ "$(cat "$VENV/.spkpeft-lock")" != "$_stamp" ]; then
  echo "[spkpeft] building $VENV from $LOCK (fresh environment)" >&2
  new_venv "$VENV" "$TORCH_VERSION"
  qpip "$VENV/bin/python" install -r "$LOCK"
  echo "$_stamp" > "$VENV/.spkpeft-lock"
fi
. "$VENV/bin/activate"
# the project itself, without letting pip touch the locked dependencies
qpip python install --no-deps -e .
test_env
