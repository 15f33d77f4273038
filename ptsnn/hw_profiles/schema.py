"""Typed schema of a hardware profile (one TOML file per target).

Every hardware number is a small table ``{ value = ..., source = "...", proxy = bool }`` so that whatever a
later stage prints (a design-rule limit, an energy estimate) can say where the number came from and whether
it was borrowed or estimated (``proxy = true``). A limit that a target does not have is simply absent
(``None`` = unlimited / not modelled). Units are fixed by the field name's suffix (see :func:`unit_of`).

Cross-field checks raise :class:`FieldProblem`, which carries the dotted path of the offending field so the
loader can report ``section.field: problem`` instead of pointing at a whole section.
"""

from __future__ import annotations

from typing import Annotated, Any, Iterator, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
ProfileName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]

UNITS = {  # name token -> unit printed next to the value
    "pj": "pJ",
    "uj": "uJ",
    "us": "us",
    "bytes": "bytes",
    "bits": "bits",
    "steps": "time steps",
    "exp": "(2^n exponent)",
}


def unit_of(field_name: str) -> str:
    """Unit of a field from a token of its name (``synapse_memory_bytes_per_core`` -> ``bytes``)."""
    tokens = field_name.rsplit(".", 1)[-1].split("_")
    for token, unit in UNITS.items():
        if token in tokens:
            return unit
    return "" if field_name.endswith("decay_max") else "count"  # decay_max: hardware code, no unit


class FieldProblem(ValueError):
    """A cross-field inconsistency; ``path`` is relative to the model that raised it."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


class _Strict(BaseModel):
    # strict: "8" is not 8 and 1 is not true in a hardware file; forbid: a typo must not vanish silently.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class _Sourced(_Strict):
    source: NonEmptyStr = Field(description="where the number comes from (paper, datasheet, code)")
    proxy: bool = Field(description="true if borrowed from another chip/generation, estimated or unconfirmed")
    note: str | None = None


# Upper bounds: no real chip has more than 2**48 of anything (a value beyond is a typo or a hostile file that
# would make capacity and energy estimates allocate or overflow); energies/times are below 1e15 in any unit.
MAX_COUNT = 2**48
MAX_REAL = 1e15
MAX_EXPONENT = 1024


class Quantity(_Sourced):
    """A non-negative real number (energy, time) with its provenance."""

    value: float = Field(ge=0, le=MAX_REAL)


class PositiveQuantity(_Sourced):
    """A strictly positive real number (a duration: zero would make latency estimates meaningless)."""

    value: float = Field(gt=0, le=MAX_REAL)


class Count(_Sourced):
    """A non-negative integer (a delay, a payload width where 0 means 'binary only')."""

    value: int = Field(ge=0, le=MAX_COUNT)


class Bits(_Sourced):
    """A positive integer: a bit width or a resource size that cannot be zero."""

    value: int = Field(ge=1, le=MAX_COUNT)


class Range(_Sourced):
    """An inclusive integer range, e.g. a power-of-2 exponent the hardware can encode."""

    min: int = Field(ge=-MAX_EXPONENT, le=MAX_EXPONENT)
    max: int = Field(ge=-MAX_EXPONENT, le=MAX_EXPONENT)

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.min > self.max:
            raise FieldProblem("min", f"min ({self.min}) must be <= max ({self.max})")
        return self


Number = Union[Quantity, PositiveQuantity, Count, Bits, Range]


def _need(model: BaseModel, names: tuple[str, ...], why: str) -> None:
    for name in names:
        if getattr(model, name) is None:
            raise FieldProblem(name, f"missing; required {why}")


class ProfileInfo(_Strict):
    name: ProfileName
    vendor: NonEmptyStr
    description: NonEmptyStr
    kind: Literal["neuromorphic", "estimate"]
    nir_reachable: bool
    lava_target: Literal["loihi2"] | None = None  # the Lava run configs ptsnn's deploy stage knows


class Numerics(_Strict):
    """Number formats. Mantissa widths count the sign bit when the quantity is signed."""

    float_arithmetic: bool
    float_bits: Bits | None = None
    weight_bits: Bits | None = None  # signed mantissa
    weight_exp: Range | None = None
    current_bits: Bits | None = None
    voltage_bits: Bits | None = None
    decay_mode: Literal["multiplicative", "bitshift"] | None = None
    decay_bits: Bits | None = None
    decay_max: Count | None = None
    threshold_bits: Bits | None = None  # mantissa
    threshold_exp: Range | None = None
    bias_bits: Bits | None = None  # signed mantissa
    bias_exp: Range | None = None
    graded_spike_bits: Count | None = None  # 0 = binary spikes only
    delay_bits: Bits | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Numerics":
        if self.float_arithmetic:
            _need(self, ("float_bits",), "when float_arithmetic = true")
        else:
            _need(self, ("weight_bits", "voltage_bits", "decay_mode"), "for fixed-point arithmetic")
        if (self.decay_bits is None) != (self.decay_max is None):
            missing = "decay_max" if self.decay_max is None else "decay_bits"
            raise FieldProblem(missing, "decay_bits and decay_max must be given together")
        if self.decay_bits is not None and self.decay_max is not None:
            top = 2**self.decay_bits.value - 1
            if self.decay_max.value > top:
                raise FieldProblem(
                    "decay_max.value",
                    f"{self.decay_max.value} does not fit in decay_bits = {self.decay_bits.value} "
                    f"(max {top})",
                )
        # A mantissa shifted by its largest exponent must still fit the state it is added to.
        v = self.voltage_bits.value if self.voltage_bits else None
        for mant, exp in (("threshold_bits", "threshold_exp"), ("bias_bits", "bias_exp")):
            m, e = getattr(self, mant), getattr(self, exp)
            if v is not None and m is not None:
                width = m.value + (max(e.max, 0) if e is not None else 0)
                if width > v:
                    raise FieldProblem(
                        f"{mant}.value", f"{mant} + {exp}.max = {width} bits exceeds voltage_bits = {v}"
                    )
        if self.current_bits is not None and self.weight_bits is not None:
            if self.weight_bits.value > self.current_bits.value:
                raise FieldProblem(
                    "weight_bits.value",
                    f"{self.weight_bits.value} exceeds current_bits = {self.current_bits.value}",
                )
        return self


class Structure(_Strict):
    """Resource limits; absent = unlimited (or not modelled). Fan-in/out limits say per neuron or per core."""

    chips: Bits | None = None
    cores_per_chip: Bits | None = None
    neurons_per_core: Bits | None = None
    neurons_per_chip: Bits | None = None
    synapses_per_chip: Bits | None = None
    synapse_memory_bytes_per_core: Bits | None = None
    input_channels: Bits | None = None
    output_neurons: Bits | None = None
    max_fan_in_per_neuron: Bits | None = None
    max_fan_out_per_neuron: Bits | None = None
    max_fan_in_per_core: Bits | None = None
    max_fan_out_per_core: Bits | None = None
    max_delay_steps: Count | None = None  # 0 = no programmable delays

    @model_validator(mode="after")
    def _consistent(self) -> "Structure":
        if self.neurons_per_core and self.neurons_per_chip:
            if self.neurons_per_core.value > self.neurons_per_chip.value:
                raise FieldProblem(
                    "neurons_per_core.value",
                    f"{self.neurons_per_core.value} exceeds neurons_per_chip = {self.neurons_per_chip.value}",
                )
        return self


class Timing(_Strict):
    time_step_us: PositiveQuantity | None = None  # wall-clock duration of one algorithmic time step
    layer_latency_steps: Count | None = None  # steps each synapse layer adds (Loihi: 1)


class Energy(_Strict):
    """Energy per event, pJ (``inference_uj``: per whole inference, uJ, with the task in ``note``)."""

    synaptic_op_pj: Quantity | None = None
    neuron_update_pj: Quantity | None = None  # active neuron
    neuron_idle_pj: Quantity | None = None
    spike_tile_pj: Quantity | None = None  # spike delivered within a tile/core
    spike_hop_pj: Quantity | None = None  # per router hop
    mac_pj: Quantity | None = None  # multiply-accumulate (real-valued input)
    ac_pj: Quantity | None = None  # accumulate (binary spike input)
    int8_add_pj: Quantity | None = None
    int8_mult_pj: Quantity | None = None
    int32_add_pj: Quantity | None = None
    int32_mult_pj: Quantity | None = None
    inference_uj: Quantity | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Energy":
        if self.neuron_idle_pj and self.neuron_update_pj:
            if self.neuron_idle_pj.value > self.neuron_update_pj.value:
                raise FieldProblem(
                    "neuron_idle_pj.value",
                    f"idle ({self.neuron_idle_pj.value}) exceeds active neuron_update_pj "
                    f"({self.neuron_update_pj.value}); swapped?",
                )
        return self


SECTIONS = ("profile", "numerics", "structure", "timing", "energy")


class HardwareProfile(_Strict):
    profile: ProfileInfo
    numerics: Numerics
    structure: Structure = Structure()
    timing: Timing = Timing()
    energy: Energy

    @model_validator(mode="after")
    def _consistent(self) -> "HardwareProfile":
        kind = self.profile.kind
        if kind == "neuromorphic":
            for name in ("chips", "cores_per_chip", "neurons_per_core"):
                if getattr(self.structure, name) is None:
                    raise FieldProblem(f"structure.{name}", "missing; required for a neuromorphic profile")
            for name in ("synaptic_op_pj", "neuron_update_pj"):
                if getattr(self.energy, name) is None:
                    raise FieldProblem(f"energy.{name}", "missing; required for a neuromorphic profile")
        else:
            for name in ("mac_pj", "ac_pj"):
                if getattr(self.energy, name) is None:
                    raise FieldProblem(f"energy.{name}", "missing; required for an estimate profile")
        delay, bits = self.structure.max_delay_steps, self.numerics.delay_bits
        if delay is not None and bits is not None and delay.value > 2**bits.value - 1:
            raise FieldProblem(
                "structure.max_delay_steps.value",
                f"{delay.value} does not fit in numerics.delay_bits = {bits.value} (max {2**bits.value - 1})",
            )
        if self.profile.lava_target is not None and self.numerics.float_arithmetic:
            raise FieldProblem("profile.lava_target", "a Lava target needs fixed-point numerics")
        return self

    # -- accessors used by later stages ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.profile.name

    def numbers(self) -> Iterator[tuple[str, Number]]:
        """Every sourced number as ``(dotted_path, item)``, in schema order, absent ones skipped."""
        for section in ("numerics", "structure", "timing", "energy"):
            model = getattr(self, section)
            for field in type(model).model_fields:
                item = getattr(model, field)
                if isinstance(item, _Sourced):
                    yield f"{section}.{field}", item

    def get(self, path: str) -> Number | None:
        """The item at ``section.field`` (``None`` if absent = unlimited); KeyError for an unknown path."""
        section, _, field = path.partition(".")
        model = getattr(self, section, None) if section in SECTIONS[1:] else None
        if model is None or field not in type(model).model_fields:
            raise KeyError(f"no such profile field: {path!r}")
        item = getattr(model, field)
        if item is not None and not isinstance(item, _Sourced):
            raise KeyError(f"{path} is a plain setting, not a sourced number: read it as an attribute")
        return item

    def value(self, path: str) -> float | int | None:
        """Plain value at ``section.field``, e.g. ``value("structure.neurons_per_core")`` -> 8192 or None."""
        item = self.get(path)
        if item is None:
            return None
        if isinstance(item, Range):
            raise KeyError(f"{path} is a range: use get({path!r}).min / .max")
        return item.value

    def proxies(self) -> list[str]:
        """Dotted paths of every number marked ``proxy = true``."""
        return [path for path, item in self.numbers() if item.proxy]

    @property
    def total_cores(self) -> int | None:
        s = self.structure
        return s.chips.value * s.cores_per_chip.value if s.chips and s.cores_per_chip else None

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per number: path, value (text), unit, proxy, source; for tables and reports."""
        rows = []
        for path, item in self.numbers():
            text = f"{item.min}..{item.max}" if isinstance(item, Range) else _fmt(item.value)
            rows.append(
                {
                    "path": path,
                    "value": text,
                    "unit": unit_of(path),
                    "proxy": item.proxy,
                    "source": item.source,
                    "note": item.note,
                }
            )
        return rows


def _fmt(value: float | int) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return f"{value:,}" if abs(value) >= 10_000 else str(value)
