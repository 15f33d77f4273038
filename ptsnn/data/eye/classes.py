"""The class and condition vocabulary shared by every eye-emotion data source (SEE and the synthetic set)."""

from __future__ import annotations

from ptsnn.data.corpus import SPLITS  # the speech corpora's split names, shared

# SEE's emotion folder names, verbatim: the data set spells neutral as "neutraL" and the loader keeps it,
# so that class names match the folders, emotion.json and the authors' per-class tables.
SEE_CLASSES = ("angry", "disgust", "fear", "happiness", "neutraL", "sadness", "surprise")
LIGHTINGS = ("normal", "overexposure", "low-light", "HDR")

# Spellings of the lighting field of a SEE sequence name -> canonical name. The published example is
# "normal"; the other spellings are accepted case-insensitively with or without a hyphen.
_LIGHTING_ALIASES = {
    "normal": "normal",
    "overexposure": "overexposure", "overexposed": "overexposure", "over": "overexposure",
    "lowlight": "low-light", "low": "low-light", "dark": "low-light",
    "hdr": "HDR",
}


def canonical_lighting(token: str) -> str | None:
    """The canonical lighting name of a sequence-name field, or None if it is not one."""
    return _LIGHTING_ALIASES.get(token.replace("-", "").lower())
