"""Hardware profiles: one validated TOML file per target (Loihi 2, Loihi 1, a 45 nm CMOS estimate, Xylo).

Later stages read limits and costs from here instead of hard-coding them: the converter's design-rule
checks (``numerics``, ``structure``), the deploy stage's Lava run config (``profile.lava_target``) and the
report's energy estimate (``energy``). See docs/hw_profiles.md.

>>> p = load_profile("loihi2")
>>> p.energy.synaptic_op_pj.value, p.energy.synaptic_op_pj.proxy
(23.6, True)
"""

from ptsnn.hw_profiles.loader import (
    describe_validation_error,
    list_profiles,
    load_profile,
    load_profile_file,
    parse_profile,
)
from ptsnn.hw_profiles.schema import (
    Bits,
    Count,
    Energy,
    HardwareProfile,
    Numerics,
    PositiveQuantity,
    ProfileInfo,
    Quantity,
    Range,
    Structure,
    Timing,
    unit_of,
)

__all__ = [
    "Bits",
    "Count",
    "Energy",
    "HardwareProfile",
    "Numerics",
    "PositiveQuantity",
    "ProfileInfo",
    "Quantity",
    "Range",
    "Structure",
    "Timing",
    "describe_validation_error",
    "list_profiles",
    "load_profile",
    "load_profile_file",
    "parse_profile",
    "unit_of",
]
