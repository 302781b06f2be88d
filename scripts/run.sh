#!/usr/bin/env bash
# First command of the README: set up, then run the engine on its embedded default
# (synthetic people, ground-truth keypoints, the shipped model) for 20 seconds, printing labels.
# --realtime paces the synthetic source like a 30 fps camera; without it a recorded source runs flat out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/engine run --realtime --duration "${DURATION:-20}" "$@"
