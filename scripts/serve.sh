#!/usr/bin/env bash
# Set up (once) and run snodo with the embedded PostgreSQL in ./var, plus the demo territory.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/snodo seed-demo --password "${SNODO_DEMO_PASSWORD:-snodo-demo-2026}"
exec .venv/bin/snodo serve "$@"
