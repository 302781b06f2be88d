#!/usr/bin/env bash
# First command of the README: set up, then run the engine on its embedded default
# (synthetic people, ground-truth keypoints, the shipped model) for 20 seconds, printing labels.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/engine run --duration "${DURATION:-20}" "$@"
