"""User-facing errors.

Every problem a user can cause (a bad file, a bad option, a design rule a model breaks) is raised as a
:class:`PtsnnError` with a message that fits on one line and names the problem. The CLI prints that line
and exits with ``exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class PtsnnError(Exception):
    """An error the user can act on; the message is printed as one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ProfileError(PtsnnError):
    """A hardware profile file is malformed or inconsistent."""


class InputError(PtsnnError):
    """An input file (audio, features, checkpoint, netx, NIR, array) cannot be used."""


class DesignRuleError(PtsnnError):
    """A model does not fit the limits of a hardware profile."""


class LavaRunError(PtsnnError):
    """Lava's runtime failed, hung past its timeout or could not be started."""

    exit_code = 3


class RegisterWarning(UserWarning):
    """A value lies outside a Loihi register but Lava simulates it anyway; ptsnn simulates it exactly as Lava
    does and says so in one line (naming the file, layer and register)."""
