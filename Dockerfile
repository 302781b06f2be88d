# The engine's image: one image for every stage. `engine run` starts the pipeline (capture, render,
# classify, the supervisor and any local pose workers); `engine stage pose` is a remote pose worker.
#
#   docker build -t har-engine .                                   # FROM debian:bookworm-slim
#   docker build --build-arg BASE=python:3.11-slim -t har-engine . # or any Debian-based image with Python 3.11
#   docker run --rm --network=host har-engine                      # the embedded default, labels on tcp://127.0.0.1:5560
#
# Where no registry is reachable, scripts/container.sh makes a Debian base image with debootstrap
# and builds this file unchanged with BASE set to it (README, "Deploy on Kubernetes").
ARG BASE=debian:bookworm-slim

# ---- build: a virtual environment with the engine installed, as scripts/setup.sh does it ----
FROM ${BASE} AS build
# Debian's python3 lacks venv/ensurepip without python3-venv; python:3.11-slim images have them already.
# apt-get clean: Docker Hub's Debian images drop downloaded packages by themselves, a debootstrap base does not.
RUN if ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
# PIP_CERT: a CA bundle for pip where the build sees one only through a mount (scripts/container.sh);
# empty elsewhere. Only the install steps see it; the final image has no pip at all.
ARG PIP_CERT=
# The README's install steps (scripts/setup.sh): python3 -m venv .venv, pip>=24, pip install the project;
# not editable (-e), since the image keeps no source tree. The project's dependencies go first, in a
# layer of their own read from pyproject.toml alone, so that a change to the code (or the README,
# which pyproject names) rebuilds in seconds instead of downloading them again.
COPY pyproject.toml ./
RUN python3 -m venv /opt/engine/.venv \
    && env ${PIP_CERT:+PIP_CERT=$PIP_CERT} /opt/engine/.venv/bin/python -m pip install --quiet --no-cache-dir --upgrade "pip>=24" \
    && /opt/engine/.venv/bin/python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && env ${PIP_CERT:+PIP_CERT=$PIP_CERT} /opt/engine/.venv/bin/python -m pip install --quiet --no-cache-dir -r requirements.txt
COPY README.md ./
COPY engine engine
COPY stages stages
COPY pose pose
COPY trainer trainer
# Then pip itself goes: no build tools at run time.
RUN env ${PIP_CERT:+PIP_CERT=$PIP_CERT} /opt/engine/.venv/bin/python -m pip install --quiet --no-cache-dir . \
    && /opt/engine/.venv/bin/python -m pip uninstall --quiet --yes pip

# ---- run: the base, Python, the environment, the shipped models; a non-root user ----
FROM ${BASE}
RUN if ! command -v python3 >/dev/null; then \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null \
      && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin engine
COPY --from=build /opt/engine/.venv /opt/engine/.venv
# A non-editable install does not package models/: the classifiers, their cards and BlazePose
# (models/pose/) are copied beside it and found through ENGINE_MODELS_DIR (engine/paths.py, pose/blazepose.py).
COPY models /opt/engine/models
COPY configs /opt/engine/configs
# HOME: the user has no home folder and the root file system may be read-only (Kubernetes): a library
# that keeps a file in HOME writes it under /tmp. ORT_DISABLE_TELEMETRY: onnxruntime's Linux wheels
# (1.32 here) start Microsoft's 1DS usage telemetry unless told not to (its "telemetry_1ds" warning
# shows it; microsoft/onnxruntime#27379 brought it to POSIX): the engine talks only on its own endpoints.
ENV PATH=/opt/engine/.venv/bin:$PATH \
    HOME=/tmp \
    ORT_DISABLE_TELEMETRY=1 \
    ENGINE_MODELS_DIR=/opt/engine/models \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/engine
# Numeric, so that Kubernetes' runAsNonRoot can check it. The engine writes only under /tmp (its run folder).
USER 10001:10001
# frames (capture, for remote pose workers), poses (render), labels (PUB), metrics and health probes
EXPOSE 5555 5556 5560 9100
ENTRYPOINT ["engine"]
CMD ["run", "--realtime"]
