"""Architecture files for ``ptsnn train --model ttfs --arch``: a search result (``RUN/front.json#N``, trial N
of a ``ptsnn search`` front, or ``RUN/trials.json#N``) or a plain JSON file ``{"model_kind": "ttfs",
"architecture": {...}}``. The architecture holds the network fields of :class:`TTFSConfig` (conv, dense,
steps_per_window, frames_per_clip, temporal_encoding, window_margin); the input side (frame channels and
size, classes) comes from the data the model is trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptsnn.errors import InputError
from ptsnn.safeio import read_json

ARCH_FIELDS = ("conv", "dense", "steps_per_window", "frames_per_clip", "temporal_encoding", "window_margin")


def _check(arch: Any, where: str) -> dict:
    if not isinstance(arch, dict):
        raise InputError(f"{where}: architecture must be an object of {', '.join(ARCH_FIELDS)}")
    unknown = sorted(set(arch) - set(ARCH_FIELDS))
    if unknown:
        raise InputError(f"{where}: architecture.{unknown[0]}: unknown field (known: {', '.join(ARCH_FIELDS)})")
    if "conv" in arch and not (isinstance(arch["conv"], list) and all(isinstance(c, dict) for c in arch["conv"])):
        raise InputError(f"{where}: architecture.conv must be a list of conv layer objects")
    if "dense" in arch and not (isinstance(arch["dense"], list)
                                and all(isinstance(w, int) and not isinstance(w, bool) for w in arch["dense"])):
        raise InputError(f"{where}: architecture.dense must be a list of integer widths")
    return dict(arch)


def read_architecture(spec: str) -> dict:
    """The architecture fields named by ``spec`` (``PATH`` or ``PATH#TRIAL``); one-line errors."""
    path_s, sep, trial_s = spec.partition("#")
    path = Path(path_s)
    if path.is_dir():
        path = path / "front.json"
    doc = read_json(path, "architecture file", expect_object=True)
    if sep:
        try:
            trial = int(trial_s)
        except ValueError:
            raise InputError(f"--arch {spec}: trial after '#' must be an integer, not {trial_s!r}") from None
        rows = doc.get("candidates", doc.get("rows"))
        if doc.get("format") not in ("ptsnn-search-front", "ptsnn-search-trials") or not isinstance(rows, list):
            raise InputError(f"{path}: not a ptsnn search front.json/trials.json (needed for #{trial})")
        found = [r for r in rows if isinstance(r, dict) and r.get("trial") == trial]
        if not found:
            raise InputError(f"{path}: no trial {trial} (front: "
                             f"{', '.join(str(r.get('trial')) for r in rows if isinstance(r, dict))})")
        row = found[0]
        if row.get("family", doc.get("family")) != "ttfs":
            raise InputError(f"{path}: trial {trial} is of family {doc.get('family')!r}, not ttfs")
        if "architecture" not in row:
            raise InputError(f"{path}: trial {trial} has no architecture (state {row.get('state')})")
        return _check(row["architecture"], f"{path}#{trial}")
    if doc.get("model_kind") != "ttfs" or "architecture" not in doc:
        raise InputError(f"{path}: expected {{\"model_kind\": \"ttfs\", \"architecture\": {{...}}}} or PATH#TRIAL "
                         "of a search front")
    return _check(doc["architecture"], str(path))
