"""The engine: CLI, configuration, sources, message schema, transport and supervisor."""
import os

# onnxruntime 1.29+ on Linux writes a device id under ~/.cache/Microsoft and uploads usage events
# unless this is set before its first session: the engine promises no network it was not asked to
# use. A user who wants the telemetry sets ORT_DISABLE_TELEMETRY=0. (pose/__init__.py does the same.)
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
