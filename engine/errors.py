"""User errors: one type per kind, each message names the thing and the fix.

Library code raises these; only the CLI turns them into one line on stderr and an exit code
(`class X(EngineError, exit_code=N)`: the code is part of the type, as the CLI's contract).
"""
from __future__ import annotations


class EngineError(Exception):
    """Base of every error a user can act on."""

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


class SourceError(EngineError, exit_code=2):
    """A source string or the media it names cannot be used."""


class ConfigError(EngineError, exit_code=2):
    """A config file key or CLI option is unknown, of the wrong type or out of range."""


class ModelError(EngineError, exit_code=3):
    """A classifier model file is missing, not ONNX, or breaks the model contract."""


class DatasetError(EngineError, exit_code=3):
    """A dataset file is missing a key or holds arrays of the wrong shape."""


class TransportError(EngineError, exit_code=4):
    """A socket cannot be bound or connected (port in use, bad endpoint)."""


class StageError(EngineError, exit_code=5):
    """A stage kept crashing and the supervisor gave up."""
