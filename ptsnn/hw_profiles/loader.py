"""Find, read and validate profiles; turn every failure into a one-line :class:`ProfileError`."""

from __future__ import annotations

import difflib
import functools
import os
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ptsnn import safeio
from ptsnn.errors import InputError, ProfileError
from ptsnn.hw_profiles.schema import SECTIONS, FieldProblem, HardwareProfile, _Sourced

_PACKAGE = "ptsnn.hw_profiles"


def list_profiles() -> list[str]:
    """Names of the built-in profiles (the package's ``*.toml`` files), sorted."""
    return sorted(
        p.name[: -len(".toml")] for p in resources.files(_PACKAGE).iterdir() if p.name.endswith(".toml")
    )


def load_profile(name_or_path: str | os.PathLike[str] | HardwareProfile) -> HardwareProfile:
    """Load a built-in profile by name (``"loihi2"``) or a user profile from a TOML file path.

    An already loaded profile is returned as is, so stages can accept either.
    """
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    text = os.fspath(name_or_path)
    if not text.strip():
        raise ProfileError(f"empty profile name; built-in profiles: {', '.join(list_profiles())}")
    looks_like_path = (
        isinstance(name_or_path, os.PathLike) or text.endswith(".toml") or os.sep in text or "/" in text
    )
    if not looks_like_path:
        if text in list_profiles():
            return _load_builtin(text)
        if not Path(text).exists():
            hint = difflib.get_close_matches(text, list_profiles(), n=1)
            did = f"did you mean {hint[0]!r}? " if hint else ""
            raise ProfileError(
                f"unknown profile {text!r}: {did}built-in profiles are {', '.join(list_profiles())}; "
                "or give the path of a .toml file"
            )
    return load_profile_file(Path(text))


def load_profile_file(path: str | os.PathLike[str]) -> HardwareProfile:
    """Load and validate a user profile file; every problem is a one-line :class:`ProfileError`."""
    path = Path(path)
    origin = str(path)
    try:
        limit = safeio.limits().max_text_bytes
        if path.is_file() and path.stat().st_size > limit:
            raise ProfileError(f"profile {origin}: {path.stat().st_size:,} bytes, above the limit of {limit:,} for "
                               "TOML text (PTSNN_MAX_TEXT_BYTES)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(f"profile {origin}: file not found") from None
    except IsADirectoryError:
        raise ProfileError(f"profile {origin}: is a directory, not a TOML file") from None
    except PermissionError:
        raise ProfileError(f"profile {origin}: permission denied") from None
    except OSError as exc:
        raise ProfileError(f"profile {origin}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProfileError(f"profile {origin}: not UTF-8 text (TOML files must be UTF-8)") from None
    return parse_profile(text, origin)


def parse_profile(text: str, origin: str = "<string>") -> HardwareProfile:
    """Validate TOML text; ``origin`` names the file in error messages."""
    try:
        data = safeio.parse_toml(text, f"profile {origin}")  # bounded size and nesting (no RecursionError)
    except InputError as exc:
        raise ProfileError(str(exc)) from None
    try:
        return HardwareProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"profile {origin}: {describe_validation_error(exc)}") from None


@functools.lru_cache(maxsize=None)  # profiles are frozen, so sharing one instance is safe
def _load_builtin(name: str) -> HardwareProfile:
    text = resources.files(_PACKAGE).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_profile(text, f"{name}.toml")


# -- pydantic ValidationError -> "dotted.path: problem" ----------------------------------------------------


def describe_validation_error(exc: ValidationError) -> str:
    """``path: problem`` for the first error, plus ``(and N more)``; always one line."""
    # An unknown name usually explains a "missing" one (a typo), so report it first.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    path, problem = _describe(errors[0])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {problem}{more}" if path else f"{problem}{more}"


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = [str(part) for part in err["loc"]]
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "value_error" and isinstance(ctx.get("error"), FieldProblem):
        problem = ctx["error"]
        return ".".join(loc + [problem.path]), problem.message
    path = ".".join(loc)
    if kind == "missing":
        model = _model_at(loc)
        if len(loc) == 1:
            return path, f"missing section [{loc[0]}]"
        if model is not None and issubclass(model, _Sourced):
            return path, f"missing; write {loc[-1]} = {_table_hint(model)}"
        parent = _model_at(loc[:-1])
        if parent is not None and issubclass(parent, _Sourced):
            return path, f"missing; every number needs {', '.join(_keys(parent))}"
        return path, "missing required field"
    if kind == "extra_forbidden":
        allowed = _fields_of(loc[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(allowed)}"
        what = "section" if len(loc) == 1 else "field"
        return path, f"unknown {what} ({hint})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        model = _model_at(loc)
        if model is not None and issubclass(model, _Sourced):
            return path, f"must be a table {_table_hint(model)} (got {_show(got)})"
        return path, f"must be a table/section (got {_show(got)})"
    simple = {
        "bool_type": "must be true or false",
        "int_type": "must be an integer",
        "float_type": "must be a number",
        "string_type": "must be a string",
        "finite_number": "must be a finite number",
        "string_too_short": "must not be empty",
    }
    if kind in simple:
        return path, f"{simple[kind]} (got {_show(got)})"
    if kind == "greater_than_equal":
        return path, f"must be >= {ctx['ge']} (got {_show(got)})"
    if kind == "greater_than":
        return path, f"must be > {ctx['gt']} (got {_show(got)})"
    if kind == "string_pattern_mismatch":
        return path, f"must match {ctx['pattern']} (lowercase letters, digits, _) (got {_show(got)})"
    if kind == "literal_error":
        omit = "; omit the field for none" if path == "profile.lava_target" else ""
        return path, f"must be one of {ctx['expected']}{omit} (got {_show(got)})"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return path, f"{msg[:1].lower()}{msg[1:]} (got {_show(got)})"


def _keys(model: type[BaseModel]) -> list[str]:
    names = [name for name, field in model.model_fields.items() if field.is_required()]
    return sorted(names, key=lambda n: n not in ("value", "min", "max"))  # value first, as in the files


def _table_hint(model: type[BaseModel]) -> str:
    head = "min = ..., max = ..." if "min" in model.model_fields else "value = ..."
    return f'{{ {head}, source = "...", proxy = true|false }}'


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # TOML spelling, not Python's
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array ([...] or [[...]])"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``X | None`` (or X itself)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_class(arg)
            if found is not None:
                return found
    return None


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = HardwareProfile
    for part in loc:
        if model is None or part not in model.model_fields:
            return None
        model = _model_class(model.model_fields[part].annotation)
    return model


def _fields_of(loc: list[str]) -> list[str]:
    model = _model_at(loc) if loc else HardwareProfile
    if model is None:
        return []
    return list(SECTIONS) if model is HardwareProfile else list(model.model_fields)
