"""Bounded loading of files that come from users: the one place every reader gets its size, depth, dtype and
finiteness checks from (docs/security.md).

Each function either returns checked data or raises an :class:`~ptsnn.errors.InputError` whose one line names
the file, the field (array, key, dataset) and the problem. Nothing is allocated before its size is known to be
within :func:`limits`: ``.npy`` headers are read before the data, ``.npz`` members are checked by their
declared sizes, HDF5 datasets by shape and dtype, text by its byte size.

The limits are defaults sized for this project's models (a few MB of weights, utterances of minutes) with a
generous margin; each can be raised with an environment variable (``PTSNN_MAX_ARRAY_BYTES`` ...), read at every
call so a test or a user can change them without a restart.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ptsnn.errors import InputError

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 4 * GiB  # any one input file (checkpoint, HDF5, audio, archive)
    max_array_bytes: int = 1 * GiB  # one decoded array / dataset / archive member
    max_total_bytes: int = 2 * GiB  # all datasets of one HDF5 file or members of one .npz together
    max_text_bytes: int = 64 * MiB  # JSON / TOML / CSV text
    max_depth: int = 32  # nesting of JSON / TOML values (configs are 2-3 deep)
    max_elements: int = 1 << 28  # elements of one array a reader builds (268 M: 1 GiB of float32)
    # one population / input layer: 2**20 = 1,048,576 neurons, just above the loihi2 profile's
    # neurons_per_chip (1,000,000), the largest chip among the built-in hardware profiles
    max_neurons: int = 1 << 20
    max_steps: int = 1_000_000  # time steps of one simulation (an utterance of 5.5 hours at 20 ms steps)
    max_abs_value: float = 1e9  # |x| of any real parameter (weights, thresholds, features): beyond is corrupt
    max_parameters: int = 64_000_000  # weights a model config may ask for (the paper's model has 1.19 M)


_ENV = {
    "max_file_bytes": "PTSNN_MAX_FILE_BYTES",
    "max_array_bytes": "PTSNN_MAX_ARRAY_BYTES",
    "max_total_bytes": "PTSNN_MAX_TOTAL_BYTES",
    "max_text_bytes": "PTSNN_MAX_TEXT_BYTES",
    "max_depth": "PTSNN_MAX_NESTING",
    "max_elements": "PTSNN_MAX_ELEMENTS",
    "max_neurons": "PTSNN_MAX_NEURONS",
    "max_steps": "PTSNN_MAX_STEPS",
    "max_abs_value": "PTSNN_MAX_ABS_VALUE",
    "max_parameters": "PTSNN_MAX_PARAMETERS",
}


def limits() -> Limits:
    """The defaults, each overridden by its environment variable when set (a positive number)."""
    values: dict[str, Any] = {}
    for name, var in _ENV.items():
        raw = os.environ.get(var)
        if raw is None or not raw.strip():
            continue
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"environment {var}={raw!r}: expected a positive number") from None
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"environment {var}={raw!r}: expected a positive number")
        values[name] = value if name == "max_abs_value" else int(value)
    return Limits(**values)


def _size(n: float) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


# ---------------------------------------------------------------------------------------------- files / text
def check_file(path: str | os.PathLike, what: str = "file", *, allow_empty: bool = False) -> Path:
    """An existing regular file no larger than ``max_file_bytes``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {what} not found")
    if not p.is_file():
        raise InputError(f"{p}: not a file (expected a {what})")
    size = p.stat().st_size
    lim = limits().max_file_bytes
    if size > lim:
        raise InputError(f"{p}: {what} is {_size(size)}, above the limit of {_size(lim)} (PTSNN_MAX_FILE_BYTES)")
    if size == 0 and not allow_empty:
        raise InputError(f"{p}: empty file (expected a {what})")
    return p


def read_text(path: str | os.PathLike, what: str = "text file", *, encoding: str = "utf-8") -> str:
    """The file's text, refused above ``max_text_bytes`` or when it is not valid ``encoding``."""
    p = check_file(path, what, allow_empty=True)
    lim = limits().max_text_bytes
    if p.stat().st_size > lim:
        raise InputError(f"{p}: {what} is {_size(p.stat().st_size)}, above the limit of {_size(lim)} "
                         "(PTSNN_MAX_TEXT_BYTES)")
    try:
        return p.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: {what} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None


def check_depth(value: Any, origin: str, max_depth: int | None = None) -> Any:
    """Refuse containers nested deeper than ``max_depth`` (iteratively: no recursion of our own)."""
    lim = max_depth or limits().max_depth
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children: Iterable[Any] = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if d > lim:
            raise InputError(f"{origin}: values nested more than {lim} levels deep (PTSNN_MAX_NESTING)")
        stack.extend((c, d + 1) for c in children)
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str, origin: str) -> Any:
    """Strict JSON (no NaN/Infinity literals), bounded size and nesting; errors name ``origin``."""
    lim = limits()
    if len(text) > lim.max_text_bytes:
        raise InputError(f"{origin}: JSON text above the limit of {_size(lim.max_text_bytes)} (PTSNN_MAX_TEXT_BYTES)")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{origin}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:
        raise InputError(f"{origin}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{origin}: values nested too deeply (more than {lim.max_depth} levels allowed)") from None
    return check_depth(value, origin, lim.max_depth)


def read_json(path: str | os.PathLike, what: str = "JSON file", *, expect_object: bool = False) -> Any:
    """A JSON file through :func:`read_text` and :func:`parse_json`: bounded size and nesting, UTF-8, no
    NaN/Infinity literals; with ``expect_object`` the top level must be an object. Every defect is one
    InputError naming the file."""
    doc = parse_json(read_text(path, what), str(path))
    if expect_object and not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object")
    return doc


def parse_toml(text: str, origin: str) -> dict:
    """TOML with bounded size and nesting; errors name ``origin``."""
    lim = limits()
    if len(text) > lim.max_text_bytes:
        raise InputError(f"{origin}: TOML text above the limit of {_size(lim.max_text_bytes)} (PTSNN_MAX_TEXT_BYTES)")
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{origin}: TOML syntax error: {exc}") from None
    except RecursionError:
        raise InputError(f"{origin}: values nested too deeply (more than {lim.max_depth} levels allowed)") from None
    return check_depth(value, origin, lim.max_depth)


# ---------------------------------------------------------------------------------------------- arrays
def check_array(arr: np.ndarray, where: str, *, kinds: str = "biuf", ndim: int | tuple[int, ...] | None = None,
                finite: bool = True, max_abs: float | None = None, nonempty: bool = True) -> np.ndarray:
    """dtype kind in ``kinds`` (b bool, i/u int, f float), ``ndim``, no NaN/Inf and ``|x| <= max_abs`` for
    floats (``max_abs`` defaults to ``max_abs_value``)."""
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{where}: expected an array, got {type(arr).__name__}")
    if arr.dtype.hasobject or arr.dtype.kind not in kinds:
        raise InputError(f"{where}: dtype {arr.dtype} is not allowed (expected {_kinds(kinds)})")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise InputError(f"{where}: {arr.ndim}-D array of shape {arr.shape} (expected "
                             f"{' or '.join(f'{n}-D' for n in allowed)})")
    if nonempty and arr.size == 0:
        raise InputError(f"{where}: empty array of shape {arr.shape}")
    if arr.dtype.kind == "f" and arr.size:
        if finite:
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if bad:
                raise InputError(f"{where}: {bad} NaN or infinite value(s)")
        bound = limits().max_abs_value if max_abs is None else max_abs
        peak = float(np.max(np.abs(arr))) if finite else float(np.nanmax(np.abs(np.where(np.isinf(arr), 0, arr))))
        if peak > bound:
            raise InputError(f"{where}: value {peak:.3g} exceeds |x| <= {bound:g} (corrupt data? PTSNN_MAX_ABS_VALUE)")
    return arr


def _kinds(kinds: str) -> str:
    names = {"b": "bool", "i": "signed int", "u": "unsigned int", "f": "float", "c": "complex"}
    return ", ".join(names[k] for k in kinds if k in names)


def check_count(n: Any, what: str, limit: int, env: str = "") -> int:
    """A size an input declares (neurons, steps, elements): an int in 0..limit."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise InputError(f"{what}: {n!r} is not an integer")
    if n < 0:
        raise InputError(f"{what}: {n} is negative")
    if n > limit:
        raise InputError(f"{what}: {n:,} is above the limit of {limit:,}" + (f" ({env})" if env else ""))
    return int(n)


def _npy_header(f, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except zipfile.BadZipFile:
        raise  # a CRC mismatch inside an .npz member: load_npz names it as damage
    except Exception as exc:  # numpy parses the header with ast/tokenize: ValueError, SyntaxError, TokenError...
        raise InputError(f"{where}: not a readable .npy array ({' '.join(str(exc).split())[:120] or type(exc).__name__})") \
            from None
    if dtype.hasobject:
        raise InputError(f"{where}: holds Python objects (dtype {dtype}); refused (only numeric arrays load)")
    return tuple(int(s) for s in shape), bool(fortran), dtype


def _check_declared(shape: tuple[int, ...], dtype: np.dtype, where: str, kinds: str) -> int:
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise InputError(f"{where}: dtype {dtype} is not allowed (expected {_kinds(kinds)})")
    lim = limits()
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if count > lim.max_elements or nbytes > lim.max_array_bytes:
        raise InputError(f"{where}: array of shape {shape} ({_size(nbytes)}) is above the limit of "
                         f"{_size(lim.max_array_bytes)} (PTSNN_MAX_ARRAY_BYTES)")
    return nbytes


def load_npy(path: str | os.PathLike, what: str = "array", *, kinds: str = "biuf",
             ndim: int | tuple[int, ...] | None = None, finite: bool = True, max_abs: float | None = None,
             nonempty: bool = True) -> np.ndarray:
    """One ``.npy`` array: header checked (no objects, bounded size, not truncated) before the data is read."""
    p = check_file(path, f"{what} .npy file")
    with open(p, "rb") as f:
        head = f.read(4)
        if head == b"PK\x03\x04":
            raise InputError(f"{p}: is an .npz archive; give one .npy array")
        f.seek(0)
        shape, fortran, dtype = _npy_header(f, str(p))
        nbytes = _check_declared(shape, dtype, str(p), kinds)
        left = p.stat().st_size - f.tell()
        if left < nbytes:
            raise InputError(f"{p}: truncated .npy file (header declares {nbytes} data bytes, {left} present)")
        data = f.read(nbytes)
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
    return check_array(np.array(arr), f"{p}", kinds=kinds, ndim=ndim, finite=finite, max_abs=max_abs,
                       nonempty=nonempty)


def load_npz(path: str | os.PathLike, what: str = "archive", *, kinds: str = "biuf", finite: bool = True,
             max_abs: float | None = None, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive (only ``names`` when given), each checked as :func:`load_npy`;
    declared member sizes are checked before anything is decompressed (no zip bombs)."""
    p = check_file(path, f"{what} .npz file")
    lim = limits()
    wanted = None if names is None else set(names)
    out: dict[str, np.ndarray] = {}
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{p}: not an .npz archive ({' '.join(str(exc).split())[:120]})") from None
    with zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > lim.max_total_bytes:
            raise InputError(f"{p}: archive members declare {_size(total)}, above the limit of "
                             f"{_size(lim.max_total_bytes)} (PTSNN_MAX_TOTAL_BYTES)")
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            where = f"{p}: array {key!r}"
            if not info.filename.endswith(".npy"):
                raise InputError(f"{where}: archive member is not an .npy array (np.savez writes only .npy)")
            if wanted is not None and key not in wanted:
                continue
            if info.file_size > lim.max_array_bytes:
                raise InputError(f"{where}: member of {_size(info.file_size)} is above the limit of "
                                 f"{_size(lim.max_array_bytes)} (PTSNN_MAX_ARRAY_BYTES)")
            try:
                with zf.open(info) as f:
                    shape, fortran, dtype = _npy_header(f, where)
                    nbytes = _check_declared(shape, dtype, where, kinds)
                    data = f.read(nbytes + 1)
            except InputError:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
                # a CRC mismatch (flipped bits) or a damaged deflate stream
                raise InputError(f"{where}: damaged archive member ({' '.join(str(exc).split())[:120]})") from None
            if len(data) != nbytes:
                raise InputError(f"{where}: data is {len(data)} bytes, the header declares {nbytes} (truncated?)")
            arr = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
            arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
            out[key] = check_array(np.array(arr), where, kinds=kinds, finite=finite, max_abs=max_abs,
                                   nonempty=False)
    return out


# ---------------------------------------------------------------------------------------------- HDF5
def check_hdf5(path: str | os.PathLike, what: str = "HDF5 file") -> Path:
    """Open an HDF5 file and check every dataset's declared size before any reader reads one: no dataset
    above ``max_array_bytes``, all together below ``max_total_bytes``, no object/variable-length numerics."""
    import h5py

    p = check_file(path, what)
    lim = limits()
    try:
        f = h5py.File(p, "r")
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not an HDF5 file ({type(exc).__name__})") from None
    total = 0
    problem: list[str] = []

    def visit(name: str, obj) -> None:
        nonlocal total
        if problem or not isinstance(obj, h5py.Dataset):
            return
        try:
            nbytes = int(obj.size or 0) * int(obj.dtype.itemsize)
        except (TypeError, ValueError, OSError) as exc:
            problem.append(f"dataset {name!r}: unreadable header ({type(exc).__name__})")
            return
        if nbytes > lim.max_array_bytes:
            problem.append(f"dataset {name!r} declares {_size(nbytes)} (shape {obj.shape}), above the limit of "
                           f"{_size(lim.max_array_bytes)} (PTSNN_MAX_ARRAY_BYTES)")
        total += nbytes

    with f:
        try:
            f.visititems(visit)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise InputError(f"{p}: damaged HDF5 structure ({type(exc).__name__})") from None
    if problem:
        raise InputError(f"{p}: {problem[0]}")
    if total > lim.max_total_bytes:
        raise InputError(f"{p}: datasets declare {_size(total)} together, above the limit of "
                         f"{_size(lim.max_total_bytes)} (PTSNN_MAX_TOTAL_BYTES)")
    return p


# ---------------------------------------------------------------------------------------------- schemas
def describe_validation(exc) -> str:
    """A pydantic ``ValidationError`` as ``dotted.field: problem (got value)``, one line, first error."""
    unknown = ("extra_forbidden", "unexpected_keyword_argument")
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] not in unknown)
    err = errors[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    got = err.get("input")
    shown = repr(got)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if kind in unknown:
        problem = "unknown field (not part of the schema)"
    elif kind == "missing":
        problem = "missing required field"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
        problem = f"{msg[:1].lower()}{msg[1:]} (got {shown})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {problem}{more}" if loc else f"{problem}{more}"
