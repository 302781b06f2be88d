#!/usr/bin/env bash
# Creates .venv at the repository root and installs the engine into it (editable: models/ is read in place).
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test,train
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip>=24"
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
else
  .venv/bin/python -m pip install --quiet -e .
fi
