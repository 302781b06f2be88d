"""User errors: one type per kind, each message names the thing and the fix.

Library code raises these; only the CLI turns them into one line on stderr and an exit code.
"""
from __future__ import annotations


class EngineError(Exception):
    """Base of every error a user can act on."""

    exit_code = 1


class SourceError(EngineError):
    """A source string or the media it names cannot be used."""

    exit_code = 2


class ConfigError(EngineError):
    """A config file key or CLI option is unknown, of the wrong type or out of range."""

    exit_code = 2


class ModelError(EngineError):
    """A classifier model file is missing, not ONNX, or breaks the model contract."""

    exit_code = 3


class DatasetError(EngineError):
    """A dataset file is missing a key or holds arrays of the wrong shape."""

    exit_code = 3


class TransportError(EngineError):
    """A socket cannot be bound or connected (port in use, bad endpoint)."""

    exit_code = 4


class StageError(EngineError):
    """A stage kept crashing and the supervisor gave up."""

    exit_code = 5
