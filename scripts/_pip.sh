# Sourced by the install scripts: `qpip PYTHON ARGS...` runs `PYTHON -m pip -q ARGS...` without the
# machine-specific "Location ... is ignored" warnings that a local pip.conf index can print per package.
qpip() {
  local py="$1"
  shift
  "$py" -m pip -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
