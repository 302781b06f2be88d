"""Options dataclasses as the one source of flags, defaults and help.

A field is a command-line option when its metadata names a `flag`; `help` (and optionally
`metavar`, `choices`, `action`, `nargs`/`const`, `required`, `aliases`) go to argparse as they
are. A field holding another options dataclass (`nested(Cls)`) adds that class's flagged
fields. The same field then gives a stage its parser (`add_options`, `parse_options`) and
the supervisor the argv that starts the stage (`to_argv`), so the two cannot disagree.

Plain `dataclasses.field(metadata={"flag": ..., "help": ...})` works too: modules below the
framework (engine.classify) declare their flags that way without importing it.
"""
from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_TYPES: dict[str, type] = {"int": int, "float": float, "str": str}
_MISSING = dataclasses.MISSING


class Parser(argparse.ArgumentParser):
    """Every `engine` parser: exact flag names only, and a usage error in one line.

    argparse's prefix matching turns a typo or a half-remembered flag into another option
    (`--pose-w` silently meaning `--pose-weights`), so it is off everywhere; sub-parsers
    are built from this class too (argparse makes them of the parent's type).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        """One line naming the problem and where the flags are listed (exit 2, as argparse)."""
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def option(default: Any = _MISSING, *, flag: str, help: str, **argparse_kw: Any) -> Any:
    """A dataclass field that is also the command-line option `flag` (no default: required)."""
    metadata = {"flag": flag, "help": help, **argparse_kw}
    if default is _MISSING:
        return dataclasses.field(metadata={**metadata, "required": True})
    return dataclasses.field(default=default, metadata=metadata)


def nested(cls: type) -> Any:
    """A field holding another options dataclass, whose flags join the parent's."""
    return dataclasses.field(default_factory=cls, metadata={"nested": cls})


def same_as(cls: type, name: str, *, default: Any = _MISSING, metadata: Mapping[str, Any] | None = None) -> Any:
    """A field with the flag, help and default of `cls.name`: one meaning, one flag on every command.

    `default` and `metadata` (e.g. a longer help) change what differs on this command; a
    default makes a required option optional.
    """
    source = _field(cls, name)
    merged = {**source.metadata, **(metadata or {})}
    if default is _MISSING and source.default_factory is not _MISSING:
        return dataclasses.field(default_factory=source.default_factory, metadata=merged)
    default = source.default if default is _MISSING else default
    if default is _MISSING:
        return dataclasses.field(metadata=merged)
    return dataclasses.field(default=default, metadata={k: v for k, v in merged.items() if k != "required"})


def _field(cls: type, name: str) -> dataclasses.Field:
    try:
        return next(f for f in dataclasses.fields(cls) if f.name == name)
    except StopIteration:
        raise AttributeError(f"{cls.__name__} has no option field {name!r}") from None


def flagged_fields(cls: type) -> Iterator[tuple[tuple[str, ...], dataclasses.Field]]:
    """(path of attribute names, field) of every flagged field, nested classes flattened.

    A class's own fields come before those it inherits, so a stage's help lists its options first.
    """
    own = cls.__dict__.get("__annotations__", {})
    fields = dataclasses.fields(cls)
    for f in [f for f in fields if f.name in own] + [f for f in fields if f.name not in own]:
        if "nested" in f.metadata:
            for path, inner in flagged_fields(f.metadata["nested"]):
                yield (f.name, *path), inner
        elif f.metadata.get("flag"):
            yield (f.name,), f


def _dest(f: dataclasses.Field) -> str:
    return f.metadata["flag"].lstrip("-").replace("-", "_")


def _value_type(f: dataclasses.Field) -> str:
    """'int', 'float', 'str', 'bool' or 'tuple' from the annotation (a string under postponed evaluation)."""
    declared = str(f.type).replace("typing.", "")
    return "tuple" if declared.startswith("tuple") else declared.split("|")[0].strip()


def _default(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not _MISSING else None


def _help(f: dataclasses.Field) -> str:
    text, default = f.metadata.get("help", ""), _default(f)
    if default is None or isinstance(default, bool) or default in ("", ()) or f.metadata.get("required") or "default" in text:
        return text
    return f"{text} (default {default})"


def add_options(parser: argparse.ArgumentParser, cls: type, *, overrides_only: bool = False) -> None:
    """Add an argparse option per flagged field of `cls`.

    overrides_only: every option defaults to None (nothing given), for commands that layer
    flags over a config file; the dataclass still supplies the real defaults.
    """
    for _, f in flagged_fields(cls):
        meta = dict(f.metadata)
        kind = _value_type(f)
        kw: dict[str, Any] = {"dest": _dest(f), "help": _help(f)}
        kw["default"] = None if overrides_only else _default(f)
        for key in ("metavar", "choices", "nargs", "const"):
            if key in meta:
                kw[key] = meta[key]
        if meta.get("required") and not overrides_only:
            kw["required"] = True
        if kind == "bool":
            kw["action"] = meta.get("action", "store_true")
        elif kind == "tuple":
            kw["action"] = "append"
            kw["default"] = None
        else:
            kw["type"] = _TYPES.get(kind, str)
        parser.add_argument(meta["flag"], **kw)
        for alias in meta.get("aliases", ()):
            parser.add_argument(alias, dest=kw["dest"], type=kw.get("type"), help=argparse.SUPPRESS)


def given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """{field name: value} of `cls`'s own flagged fields that `args` holds a value for (not None)."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, _dest(f), None) if f.metadata.get("flag") else None
        if value is not None:
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return values


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    """The options object `args` describes (parsed by a parser `add_options(parser, cls)` built)."""
    nested_values = {f.name: from_args(f.metadata["nested"], args) for f in dataclasses.fields(cls) if "nested" in f.metadata}
    return cls(**given(cls, args), **nested_values)


def parse_options(cls: type[T], argv: Sequence[str] | None, prog: str, description: str | None = None) -> T:
    """A stage's whole command line: its parser built from `cls`, parsed into an options object."""
    parser = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, cls)
    return from_args(cls, parser.parse_args(argv))


def to_argv(options: Any) -> list[str]:
    """The command line that `parse_options(type(options), ...)` reads back as `options`.

    Values equal to their default are left out, so a stage's own defaults stay the only ones,
    unless the field's metadata says `always` (what `ps` and tools need to tell processes apart).
    """
    argv: list[str] = []
    for path, f in flagged_fields(type(options)):
        value = options
        for name in path:
            value = getattr(value, name)
        if value == _default(f) and not (f.metadata.get("required") or f.metadata.get("always")):
            continue
        flag = f.metadata["flag"]
        if _value_type(f) == "bool":
            argv.append(flag)  # a store_true flag given, or a store_false flag turning a True default off
        elif _value_type(f) == "tuple":
            for item in value:
                argv += [flag, str(item)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv
