"""``ptsnn search export RUN --trial N --out ckpt.pt``: the trial's checkpoint, checked (recorded sha256,
loads as the checkpoint ptsnn-convert reads) and copied atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ptsnn.errors import InputError
from ptsnn.fileio import atomic_write_bytes
from ptsnn.safeio import read_json


def read_trials(run: Path) -> dict:
    path = Path(run) / "trials.json"
    doc = read_json(path, "search trials")
    if not isinstance(doc, dict) or doc.get("format") != "ptsnn-search-trials" or not isinstance(doc.get("rows"), list):
        raise InputError(f"{path}: not a ptsnn search trials file (format ptsnn-search-trials with rows)")
    return doc


def find_trial(run: Path, number: int) -> dict:
    doc = read_trials(run)
    rows = [r for r in doc["rows"] if isinstance(r, dict) and r.get("trial") == number]
    if not rows:
        raise InputError(f"{Path(run) / 'trials.json'}: no trial {number}")
    row = rows[0]
    if row.get("state") != "COMPLETE" or not isinstance(row.get("checkpoint"), str):
        why = row.get("infeasible", {}).get("rule") if isinstance(row.get("infeasible"), dict) else None
        raise InputError(f"{Path(run) / 'trials.json'}: trial {number} is {row.get('state')}"
                         + (f" (infeasible: {why})" if why else "") + " and has no checkpoint")
    return row


def export_checkpoint(run: Path, number: int, out: Path) -> Path:
    from ptsnn.train.checkpoint import read_checkpoint
    from ptsnn.train.ttfs_checkpoint import load_integer, peek_kind

    run = Path(run)
    row = find_trial(run, number)
    src = (run / row["checkpoint"]).resolve()
    if not src.is_relative_to(run.resolve()):
        raise InputError(f"{run / 'trials.json'}: trial {number}'s checkpoint path leaves the run folder")
    if not src.is_file():
        raise InputError(f"{src}: trial {number}'s checkpoint is missing")
    data = src.read_bytes()
    if hashlib.sha256(data).hexdigest() != row.get("checkpoint_sha256"):
        raise InputError(f"{src}: sha256 differs from the one recorded for trial {number} (file changed?)")
    if peek_kind(src) == "ttfs":
        load_integer(src)  # the twin, windows and grid form ptsnn-convert derives
    else:
        read_checkpoint(src)
    return atomic_write_bytes(out, data)
