# Sourced by scripts/serve and scripts/test: make sure .venv exists and is up to date.
# Usage: source scripts/_venv.sh [dev]
venv=.venv
stamp="$venv/.installed${1:+-$1}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "installing ankisyncd${1:+ with its $1 tools} into $venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=25.1"
  if [ "${1:-}" = dev ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e . --group dev
  else
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e .
  fi
  touch "$stamp"
fi
