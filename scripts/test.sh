#!/usr/bin/env bash
# Second command of the README (and all that CI runs): set up with the test and training extras,
# install the Debian packages the tests use, run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,train
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v chromium >/dev/null || need+=(chromium fonts-dejavu-core)  # the viewer's browser test
  { command -v mosquitto && command -v openssl; } >/dev/null || need+=(mosquitto openssl)  # engine bridge's tests: a real MQTT broker, TLS certificates
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
exec .venv/bin/python -m pytest "$@"
