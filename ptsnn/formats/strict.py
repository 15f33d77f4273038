"""Strict typed schemas for the JSON files a bundle carries (``manifest.json``, ``chip_graph.json``).

The schemas are ``msgspec.Struct`` classes: unknown fields refused, no coercion ("13" is not 13, 1.0 and
``true`` are not integers), bounds and lengths from ``msgspec.Meta``, tagged unions for node kinds. msgspec
is there for start-up time: its types cost microseconds to define and validate, where pydantic's import and
schema building took ~0.1 s of every ``ptsnn run`` (docs/performance.md). Every failure becomes one line
``field.path: problem (got value)`` (:func:`describe`).

Checks that name a mapping's key (``files.host.onnx``) run in the schema's ``__post_init__`` through
:func:`check_entries`, because msgspec reports a bad dict value at ``[...]`` without its key.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")
_FIELD_MESSAGE = re.compile(r"(\S+?): ")  # "files.host.onnx: ..." raised by check_entries / __post_init__


class Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Base of every schema: unknown fields are a typo or a tampered file, not something to ignore."""


def convert(data: Any, schema: type):
    """``data`` (parsed JSON) as ``schema``, or :class:`msgspec.ValidationError`."""
    return msgspec.convert(data, schema, strict=True)


def to_builtins(obj) -> Any:
    """A validated schema object as plain JSON data (dicts, lists, str, numbers)."""
    return msgspec.to_builtins(obj)


def check_entries(field: str, mapping: dict, value_type: type, key_check=None) -> None:
    """Each value of ``mapping`` must be a ``value_type`` (strictly), each key pass ``key_check`` (which
    raises ``ValueError`` whose text names the key); a bad value is ``ValueError("field.key: problem")``."""
    for key, value in mapping.items():
        if key_check is not None:
            try:
                key_check(key)
            except ValueError as exc:
                raise ValueError(f"{field}: {exc}") from None
        try:
            msgspec.convert(value, value_type, strict=True)
        except msgspec.ValidationError as exc:
            problem = str(exc).split(" - at `", 1)[0]
            raise ValueError(f"{field}.{key}: {problem}{_got(value)}") from None


def describe(exc: msgspec.ValidationError, data: Any = None) -> str:
    """``field.path: problem (got value)``, one line, for the error msgspec reports (its first)."""
    text = " ".join(str(exc).split())
    problem, _, where = text.partition(" - at `")
    parts = [m.group(1) if m.group(1) is not None else m.group(2) for m in _PATH_PART.finditer(where.rstrip("`"))]
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", problem)
    missing = re.fullmatch(r"Object missing required field `(.*)`", problem)
    got = ""
    if unknown or missing:
        parts.append((unknown or missing).group(1))
        problem = "unknown field" if unknown else "field required"
    elif (m := _FIELD_MESSAGE.match(problem)) and "[...]" not in parts:  # from check_entries / __post_init__
        parts.append(m.group(1))
        problem = problem[m.end():]
    elif not problem.startswith("Invalid"):  # "Invalid value 'x'" names the value already
        got = _got_at(data, parts)
    path = ".".join(parts) or "(top level)"
    return f"{path}: {problem}{got}"


def _got_at(data: Any, parts: list[str]) -> str:
    node = data
    for part in parts:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return ""
    return "" if node is data else _got(node)


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return " (got an object)"
    if isinstance(value, list):
        return " (got a list)"
    text = repr(value)
    return f" (got {text if len(text) <= 60 else text[:57] + '...'})"
