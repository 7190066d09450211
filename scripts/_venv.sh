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
