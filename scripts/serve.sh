#!/usr/bin/env bash
# Set up (once) and run snodo with the embedded PostgreSQL in ./var, plus the demo territory.
# A second start reinstalls nothing and reseeds nothing unless the project or the demo changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
DATA_DIR="${SNODO_DATA_DIR:-./var}"
PASSWORD="${SNODO_DEMO_PASSWORD:-snodo-demo-2026}"
fingerprint() { cat "$@" | sha256sum | cut -d' ' -f1; }

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
installed="$(fingerprint pyproject.toml)"
if [ "$(cat .venv/.snodo-installed 2>/dev/null)" != "$installed" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[embedded]'
  echo "$installed" > .venv/.snodo-installed
fi
seeded="$(printf '%s' "$PASSWORD" | cat - app/services/platform/demo.py migrations/versions/*.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$DATA_DIR/.demo-seeded" 2>/dev/null)" != "$seeded" ]; then
  .venv/bin/snodo seed-demo --password "$PASSWORD"
  echo "$seeded" > "$DATA_DIR/.demo-seeded"
fi
exec .venv/bin/snodo serve "$@"
