"""A light argv parser for hot commands (``ptsnn run``): the same flags, read from the command's own typer
signature, without building typer's parser.

typer 0.29 builds a pydantic ``TypeAdapter`` per parameter on every call (~0.1-0.2 s, most of a short
``ptsnn run``). This parser understands only the plain, common case -- every token a known option or a
positional, every value well-formed and within the declared ``min``/``max`` -- and returns ``None`` for
anything else (``--help``, an unknown or repeated option, a bad value, a missing argument, a parameter
feature it does not model). The caller then hands the same argv to typer, so help pages, error messages
and exit codes are typer's own; this layer never produces an error of its own.
"""

from __future__ import annotations

import enum
import inspect
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
# ParameterInfo attributes this parser models; any other attribute away from its default means "let typer do it"
_MODELLED = {"default", "param_decls", "help", "show_default", "metavar", "rich_help_panel", "min", "max", "hidden"}


@dataclass
class _Param:
    name: str
    kind: type  # Path, str, int, float, bool or an Enum subclass
    is_list: bool
    default: Any
    minimum: Any
    maximum: Any


class _Unsupported(Exception):
    """The signature uses something this parser does not model: the command always goes through typer."""


def _plain_type(hint) -> tuple[type, bool]:
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return _plain_type(item)[0], True
    if hint in (Path, str, int, float, bool) or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
        return hint, False
    raise _Unsupported(f"type {hint!r}")


def _untouched(info) -> None:
    """Every attribute of ``info`` outside :data:`_MODELLED` keeps the value typer gives it by default."""
    import typer
    import typer.models

    pristine = typer.Option(None) if isinstance(info, typer.models.OptionInfo) else typer.Argument()
    for key, value in vars(info).items():
        if key not in _MODELLED and not key.startswith("_") and value != getattr(pristine, key, value):
            raise _Unsupported(f"{key}={value!r}")


def _signature(callback: Callable) -> tuple[dict[str, _Param], dict[str, str], list[_Param]]:
    """(options by flag, the flag's parameter name by flag, positional arguments in order)."""
    import typer.models

    hints = typing.get_type_hints(callback)
    params, flags, positional = {}, {}, []
    for p in inspect.signature(callback).parameters.values():
        info = p.default
        if not isinstance(info, typer.models.ParameterInfo):
            raise _Unsupported(f"parameter {p.name} without typer info")
        _untouched(info)
        kind, is_list = _plain_type(hints[p.name])
        param = _Param(p.name, kind, is_list, info.default, info.min, info.max)
        params[p.name] = param
        if isinstance(info, typer.models.ArgumentInfo):
            positional.append(param)
            continue
        if is_list:
            raise _Unsupported("repeatable options")
        decls = list(info.param_decls or ()) or [f"--{p.name.replace('_', '-')}"]
        if any("/" in d or not d.startswith("-") for d in decls):
            raise _Unsupported(f"declarations {decls}")
        if kind is bool and not info.param_decls:
            raise _Unsupported("--flag/--no-flag pairs")
        for d in decls:
            flags[d] = p.name
    if any(a.is_list for a in positional[:-1]):
        raise _Unsupported("a list argument before the last")
    return params, flags, positional


def _convert(param: _Param, text: str):
    """The value as typer would give it, or ``None`` where typer might say something else about it."""
    kind = param.kind
    if kind is Path:
        return Path(text) if text else None
    if kind is str:
        return text
    if issubclass(kind, enum.Enum):
        return next((m for m in kind if m.value == text), None)
    if kind is int and _INT.match(text):
        value = int(text)
    elif kind is float and _FLOAT.match(text):
        value = float(text)
    else:
        return None
    if (param.minimum is not None and value < param.minimum) or (param.maximum is not None and value > param.maximum):
        return None
    return value


def _default(param: _Param):
    value = param.default
    if value is ... or value is None:
        return value
    if issubclass(param.kind, enum.Enum) and not isinstance(value, param.kind):
        return param.kind(value)
    if param.kind is Path and not isinstance(value, Path):
        return Path(value)
    return value


def parse(callback: Callable, args: list[str]) -> dict[str, Any] | None:
    """Keyword arguments for ``callback`` from ``args`` (the tokens after the command's name), or ``None``
    where typer should parse them (see the module note)."""
    try:
        params, flags, positional = _signature(callback)
    except _Unsupported:
        return None
    values: dict[str, Any] = {}
    words: list[str] = []
    i, only_words = 0, False
    while i < len(args):
        token = args[i]
        i += 1
        if only_words or token == "-" or not token.startswith("-"):
            words.append(token)
            continue
        if token == "--":
            only_words = True
            continue
        flag, eq, attached = token.partition("=") if token.startswith("--") else (token[:2], "", token[2:])
        if token.startswith("--") and not eq:
            attached = None
        elif not token.startswith("--"):
            attached = attached or None
        name = flags.get(flag)
        if name is None or name in values:  # unknown, help, or repeated: typer's own message
            return None
        param = params[name]
        if param.kind is bool:
            if attached is not None:
                return None
            values[name] = True
            continue
        if attached is None:
            if i >= len(args):
                return None
            attached = args[i]
            i += 1
        value = _convert(param, attached)
        if value is None:
            return None
        values[name] = value
    for param in positional:
        if param.is_list:
            taken, words = words, []
            if not taken and param.default is ...:
                return None
            converted = [_convert(param, w) for w in taken]
            if any(v is None for v in converted):
                return None
            values[param.name] = converted if taken else _default(param)
        elif words:
            value = _convert(param, words.pop(0))
            if value is None:
                return None
            values[param.name] = value
        elif param.default is ...:
            return None
    if words:  # more positionals than the command takes
        return None
    for name, param in params.items():
        if name not in values:
            if param.default is ...:
                return None
            values[name] = _default(param)
    return values
