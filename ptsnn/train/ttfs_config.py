"""Configuration of a time-to-first-spike (TTFS) network and of how a clip of frames enters it.

A TTFS network is feed-forward and one-shot: every neuron fires at most once per inference, so a clip is
classified from one static input map. The clip's temporal cues are kept in that map's channels
(``temporal_encoding``, see :func:`ptsnn.train.ttfs.encode_clip` and docs/ttfs.md):

* ``stack``: ``frames_per_clip`` frames sampled evenly from the clip, stacked as channels
  (``frame_channels * frames_per_clip`` channels);
* ``onoff``: the first sampled frame plus the ON and OFF parts (``relu(f[k+1] - f[k])``, ``relu(f[k] - f[k+1])``)
  of the differences of successive sampled frames (``frame_channels * (2 * frames_per_clip - 1)`` channels).
  Splitting a difference into two non-negative channels keeps every input within the TTFS range [0, 1].

Validation raises :class:`ptsnn.errors.InputError` with one line naming the field and the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ptsnn.errors import InputError

TEMPORAL_ENCODINGS = ("stack", "onoff")
POOL_KINDS = (None, "max", "avg")

# Bounds that keep a network inside what the integer (chip) form can hold; docs/ttfs.md gives the reasons.
MAX_CHANNELS = 1024
MAX_KERNEL = 15
MAX_STRIDE = 4
MAX_POOL = 8
MAX_CONV_LAYERS = 8
MAX_DENSE_LAYERS = 4
MAX_DENSE_WIDTH = 4096
MAX_STEPS_PER_WINDOW = 256  # thresholds ~ 2 * slope * K must stay within 17 bits (docs/ttfs.md)
MAX_FRAME_SIDE = 512
MAX_FRAMES_PER_CLIP = 64


@dataclass(frozen=True)
class ConvSpec:
    """One convolution + ReLU, optionally followed by pooling (window ``pool_size``, stride ``pool_size``)."""

    out_channels: int
    kernel: int = 3
    stride: int = 1
    padding: int | None = None  # None: kernel // 2 ("same" for odd kernels at stride 1)
    pool: str | None = None  # None | "max" | "avg"
    pool_size: int = 2

    @classmethod
    def from_dict(cls, d) -> "ConvSpec":
        if isinstance(d, ConvSpec):
            return d
        if not isinstance(d, dict):
            raise InputError(f"ttfs config: conv layer {d!r} must be a table of out_channels, kernel, ...")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"ttfs config: conv layer has unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass
class TTFSConfig:
    frame_channels: int = 1  # channels of one frame (grey: 1; grey + events: 2)
    frame_size: tuple[int, int] = (32, 32)  # H, W
    frames_per_clip: int = 4  # frames sampled evenly from a clip
    temporal_encoding: str = "onoff"
    conv: list[ConvSpec] = field(default_factory=lambda: [ConvSpec(8, pool="max"), ConvSpec(16, pool="avg")])
    dense: list[int] = field(default_factory=lambda: [64])
    num_classes: int = 7
    steps_per_window: int = 16  # K: integer time steps per layer window on the deployment grid
    input_max: float = 1.0  # inputs are clipped to [0, input_max]; the input window B_0
    window_margin: float = 0.0  # zeta: each window B_n = (1 + zeta) * calibrated largest activation
    windows: list[float] | None = None  # fixed B_n per spiking population instead of calibration

    # ------------------------------------------------------------------------------------------ shape
    @property
    def input_channels(self) -> int:
        per = self.frames_per_clip if self.temporal_encoding == "stack" else 2 * self.frames_per_clip - 1
        return self.frame_channels * per

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_channels, int(self.frame_size[0]), int(self.frame_size[1]))

    def feature_shapes(self) -> list[tuple[int, int, int]]:
        """Shape [C, H, W] after each conv block (after its pooling). Assumes a validated config."""
        c, h, w = self.input_shape
        shapes = []
        for spec in self.conv:
            h = (h + 2 * spec.padding - spec.kernel) // spec.stride + 1
            w = (w + 2 * spec.padding - spec.kernel) // spec.stride + 1
            c = spec.out_channels
            if spec.pool:
                h, w = h // spec.pool_size, w // spec.pool_size
            shapes.append((c, h, w))
        return shapes

    # ------------------------------------------------------------------------------------- validation
    def validate(self) -> "TTFSConfig":
        self.conv = [ConvSpec.from_dict(c) for c in self.conv]
        self.conv = [dataclasses.replace(c, padding=c.kernel // 2) if c.padding is None and isinstance(c.kernel, int)
                     else c for c in self.conv]
        self.frame_size = tuple(self.frame_size)
        problems = []

        def int_in(name, value, lo, hi):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                problems.append(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
                return False
            return True

        int_in("frame_channels", self.frame_channels, 1, 16)
        if len(self.frame_size) != 2:
            problems.append(f"frame_size must be [H, W], not {list(self.frame_size)!r}")
        else:
            int_in("frame_size[0]", self.frame_size[0], 1, MAX_FRAME_SIDE)
            int_in("frame_size[1]", self.frame_size[1], 1, MAX_FRAME_SIDE)
        int_in("frames_per_clip", self.frames_per_clip, 1, MAX_FRAMES_PER_CLIP)
        if self.temporal_encoding not in TEMPORAL_ENCODINGS:
            problems.append(f"temporal_encoding must be one of {', '.join(TEMPORAL_ENCODINGS)}, "
                            f"not {self.temporal_encoding!r}")
        int_in("num_classes", self.num_classes, 2, 1000)
        int_in("steps_per_window", self.steps_per_window, 1, MAX_STEPS_PER_WINDOW)
        if not isinstance(self.input_max, (int, float)) or not self.input_max > 0:
            problems.append(f"input_max must be > 0, not {self.input_max!r}")
        if not isinstance(self.window_margin, (int, float)) or not 0 <= self.window_margin <= 10:
            problems.append(f"window_margin must be in 0..10, not {self.window_margin!r}")
        if not 0 <= len(self.conv) <= MAX_CONV_LAYERS:
            problems.append(f"at most {MAX_CONV_LAYERS} conv layers, not {len(self.conv)}")
        if not 0 <= len(self.dense) <= MAX_DENSE_LAYERS:
            problems.append(f"at most {MAX_DENSE_LAYERS} hidden dense layers, not {len(self.dense)}")
        if problems:  # the geometry below needs sane scalars
            raise InputError("ttfs config: " + "; ".join(problems))

        _, h, w = self.input_shape
        for i, spec in enumerate(self.conv):
            name = f"conv[{i}]"
            ok = int_in(f"{name}.out_channels", spec.out_channels, 1, MAX_CHANNELS)
            ok &= int_in(f"{name}.kernel", spec.kernel, 1, MAX_KERNEL)
            ok &= int_in(f"{name}.stride", spec.stride, 1, MAX_STRIDE)
            ok &= int_in(f"{name}.padding", spec.padding, 0, max(spec.kernel - 1, 0) if isinstance(spec.kernel, int)
                         else 0)
            if spec.pool not in POOL_KINDS:
                problems.append(f"{name}.pool must be max, avg or empty, not {spec.pool!r}")
                ok = False
            if spec.pool:
                ok &= int_in(f"{name}.pool_size", spec.pool_size, 2, MAX_POOL)
            if not ok:
                break
            if spec.kernel > h + 2 * spec.padding or spec.kernel > w + 2 * spec.padding:
                problems.append(f"{name}.kernel {spec.kernel} is larger than its padded input "
                                f"{h + 2 * spec.padding}x{w + 2 * spec.padding}")
                break
            h = (h + 2 * spec.padding - spec.kernel) // spec.stride + 1
            w = (w + 2 * spec.padding - spec.kernel) // spec.stride + 1
            if spec.pool:
                if h % spec.pool_size or w % spec.pool_size:
                    problems.append(f"{name}.pool_size {spec.pool_size} does not divide its input {h}x{w}")
                    break
                h, w = h // spec.pool_size, w // spec.pool_size
        for i, width in enumerate(self.dense):
            int_in(f"dense[{i}]", width, 1, MAX_DENSE_WIDTH)
        if self.windows is not None:
            n = self.num_populations
            if len(self.windows) != n:
                problems.append(f"windows must list {n} values (one per spiking layer), not {len(self.windows)}")
            elif not all(isinstance(b, (int, float)) and b > 0 for b in self.windows):
                problems.append("windows must all be > 0")
        if problems:
            raise InputError("ttfs config: " + "; ".join(problems))
        return self

    @property
    def num_populations(self) -> int:
        """Spiking weight layers (conv and hidden dense): the layers that own a window B_n."""
        return len(self.conv) + len(self.dense)

    # ---------------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["frame_size"] = list(self.frame_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TTFSConfig":
        if not isinstance(d, dict):
            raise InputError("ttfs config: expected a table of fields")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InputError(f"ttfs config: unknown field(s) {', '.join(sorted(unknown))}")
        d = dict(d)
        if "conv" in d:
            if not isinstance(d["conv"], (list, tuple)):
                raise InputError("ttfs config: conv must be a list of conv layers")
            d["conv"] = [ConvSpec.from_dict(c) for c in d["conv"]]
        if "frame_size" in d:
            d["frame_size"] = tuple(d["frame_size"])
        return cls(**d).validate()
