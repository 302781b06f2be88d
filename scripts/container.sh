#!/usr/bin/env bash
# Build and run the engine's container image with podman on a Debian machine with no image registry.
#
#   bash scripts/container.sh setup            # as root: podman, runc, debootstrap; a local Debian base image
#   bash scripts/container.sh build [TAG [ARGS...]]  # the image from the Dockerfile (default tag har-engine:latest);
#                                              # ARGS go to `podman build`, e.g. --no-cache
#   bash scripts/container.sh podman ARGS...   # podman with the settings below, e.g. `podman run --rm har-engine`
#   bash scripts/container.sh                  # setup, then build
#
# Why the settings (../shared/FACTS.md, "Containers on the development and CI machines"):
# - podman's default runtime crun fails on hybrid cgroups here; runc works.
# - podman's default ulimits are refused (setrlimit: Operation not permitted): none are set.
# - no registry is reachable: the base image is Debian bookworm made by debootstrap, passed to the
#   Dockerfile as BASE. Elsewhere build with `--build-arg BASE=debian:bookworm-slim` (the default) or
#   `python:3.11-slim` and nothing else changes.
# - pip inside the build needs this machine's CA bundle: it is mounted read-only for the build only
#   and named by PIP_CERT in the install step, so the image carries nothing of this machine.
# Not called by the default test run (tests/test_container.py is marked heavy).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE="${BASE_IMAGE:-localhost/har-base:bookworm}"
SUITE="${SUITE:-bookworm}"

conf="$(mktemp --suffix=.conf)"
trap 'rm -f "$conf"' EXIT
cat >"$conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$conf"

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/container.sh $1: run as root (installs Debian packages and writes root's image store)" >&2
    exit 2
  fi
}

setup() {
  need_root setup
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if podman image exists "$BASE_IMAGE"; then
    echo "base image $BASE_IMAGE already there"
    return
  fi
  local rootfs
  rootfs="$(mktemp -d)"
  echo "debootstrap $SUITE into $rootfs (about 30 s)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  echo "base image $BASE_IMAGE made"
}

build() {
  local tag="${1:-har-engine:latest}"
  shift || true
  podman build --network=host -v /etc/ssl/certs:/hostcerts:ro \
    --build-arg BASE="$BASE_IMAGE" --build-arg PIP_CERT=/hostcerts/ca-certificates.crt \
    -t "$tag" -f Dockerfile "$@" .
}

case "${1:-all}" in
  setup) setup ;;
  build) shift; build "$@" ;;
  podman) shift; podman "$@" ;;
  all) setup; build ;;
  *) echo "usage: scripts/container.sh [setup | build [TAG [PODMAN-BUILD-ARGS...]] | podman ARGS...]" >&2; exit 2 ;;
esac
