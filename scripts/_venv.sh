# Shared by scripts/test and scripts/demo: create .venv once and install evreplay with an extra.
# Re-installs only when pyproject.toml changed since the last install.
VENV="${EVREPLAY_VENV:-.venv}"

ensure_venv() {
  local extra="$1"
  local stamp="$VENV/.evreplay-installed-$extra"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing evreplay[$extra] into $VENV ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extra]"
    touch "$stamp"
  fi
}

# A tool that cannot share .venv (checkov pins an older boto3 than evreplay needs) gets its own
# venv, .venv-<name>, from a pinned requirements file; re-installed when that file changed.
# Sets TOOL_VENV.
ensure_tool_venv() {
  local name="$1" requirements="$2"
  TOOL_VENV="${VENV}-$name"
  local stamp="$TOOL_VENV/.evreplay-installed"
  if [ ! -x "$TOOL_VENV/bin/python" ]; then
    python3 -m venv "$TOOL_VENV"
  fi
  if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
    echo "installing $name into $TOOL_VENV ..." >&2
    "$TOOL_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
}
