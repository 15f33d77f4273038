"""Input arrays for netx networks: the two axis layouts and where the network's input shape comes from.

Arrays are ``[batch, *shape, time]`` (the batch axis may be left out). The layout names the order of
``shape``:

* ``lava``: Lava's own (x, y, z) = (W, H, C), what ``hdf5.Network``'s ports and a ``RingBuffer`` hold;
* ``lava-dl``: lava-dl/slayer's (C, H, W) (tensors ``NCHWT``); ``slayer`` is accepted as another name.

The input shape comes, in this order, from the file (an input layer's ``shape``, or the first dense layer's
weight), from ``--input-shape`` (given in the chosen layout's order) or, for a file whose first block is a
convolution and which states no input shape, from the input array itself. That is what lava-dl's
``hdf5.Network(input_shape=...)`` takes (in Lava's order); netx lets a file's input layer override it
silently, here a disagreement is an error. With ``--skip-layers`` the array feeds the first kept layer;
``--input-shape`` stays the file's input (netx still builds the skipped layers from it).
"""

from __future__ import annotations

import re

import numpy as np

from ptsnn.errors import InputError
from ptsnn.formats.netx import LayerSpec, first_block_skipped, needs_input_shape, network_shapes

LAYOUTS = ("lava", "lava-dl")
LAYOUT_ALIASES = {"slayer": "lava-dl"}
AXES = {"lava": "W, H, C", "lava-dl": "C, H, W"}


def layout_name(layout: str) -> str:
    name = LAYOUT_ALIASES.get(layout, layout)
    if name not in LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(LAYOUTS)} (or slayer = lava-dl), got {layout!r}")
    return name


def to_lava_order(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """A shape given in ``layout``'s order, in Lava's (W, H, C) order."""
    return tuple(shape[::-1]) if layout == "lava-dl" else tuple(shape)


def parse_input_shape(text: str, layout: str) -> tuple[int, ...]:
    """``--input-shape`` ("2,8,6", "2x8x6" or one number for a dense input) in ``layout``'s order -> Lava order."""
    parts = [p for p in re.split(r"[,x\s]+", text.strip()) if p]
    if not parts or len(parts) > 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"--input-shape {text!r}: expected up to three positive integers in the {layout} layout's "
                         f"order ({AXES[layout]}), e.g. 2,8,6")
    return to_lava_order(tuple(int(p) for p in parts), layout)


def reverse_space(x: np.ndarray, batched: bool) -> np.ndarray:
    """lava (W, H, C) <-> lava-dl (C, H, W): reverse the axes between batch and time."""
    first = 1 if batched else 0
    if x.ndim - 1 - first <= 1:
        return x
    axes = (*range(first), *range(x.ndim - 2, first - 1, -1), x.ndim - 1)
    return np.ascontiguousarray(x.transpose(axes))


def lava_dl_to_lava(x: np.ndarray, lava_shape: tuple[int, ...]) -> np.ndarray:
    """A lava-dl-ordered input (``[B, C, H, W, T]``, ``[C, H, W, T]`` or flat in C, H, W order) in Lava's order."""
    chw = tuple(lava_shape[::-1])
    n = int(np.prod(chw))
    if x.ndim == len(chw) + 2 and x.shape[1:-1] == chw:
        return reverse_space(x, True)
    if x.ndim == len(chw) + 1 and x.shape[:-1] == chw:
        return reverse_space(x, False)
    if x.ndim == 3 and x.shape[1] == n:
        return reverse_space(x.reshape(x.shape[0], *chw, x.shape[-1]), True)
    if x.ndim == 2 and x.shape[0] == n:
        return reverse_space(x.reshape(*chw, x.shape[-1]), False)
    want = ", ".join(map(str, chw))
    raise InputError(f"input shape {x.shape} does not fit the network input in the lava-dl layout (C, H, W) = "
                     f"({want}): expected (batch, {want}, time) or ({want}, time)")


def _shape_from_array(array_shape: tuple[int, ...], layout: str) -> tuple[int, ...] | None:
    """The (layout-ordered) image shape an array states: ``[B, a, b, c, T]`` or unbatched ``[a, b, c, T]``."""
    if len(array_shape) == 5:
        return tuple(array_shape[1:4])
    if len(array_shape) == 4:
        return tuple(array_shape[:3])
    return None


def resolve_input_shape(layers: list[LayerSpec], array_shape: tuple[int, ...], layout: str,
                        given: tuple[int, ...] | None = None, net_name: str = "network",
                        array_name: str = "input") -> tuple[tuple[int, ...], bool]:
    """The network input shape in Lava's order, and whether Lava must be told an input shape
    (``hdf5.Network(input_shape=)``: a conv-first file without an input layer shape). ``given`` is
    ``--input-shape`` already in Lava's order; Lava is told ``given`` when there is one (the file's input,
    which differs from the network's when the first layer is skipped), else the returned shape.
    Every mismatch is a one-line InputError naming the file and where the shape came from."""
    layout = layout_name(layout)
    if needs_input_shape(layers) and first_block_skipped(layers):
        # netx builds the skipped convolution too, so it needs the file's input shape; the array holds the
        # input of the first kept layer and cannot say it
        if given is None:
            raise InputError(f"{net_name}: the first layer is a convolution, the file has no input layer shape and "
                             "--skip-layers skips that layer: give the file's input shape with --input-shape "
                             "(netx needs it to build the skipped layer)")
        try:
            return network_shapes(layers, given)[0], True
        except ValueError as exc:
            raise InputError(f"{net_name}: {exc} (--input-shape, {layout} layout)") from None
    if not needs_input_shape(layers):
        try:
            return network_shapes(layers, given)[0], False
        except ValueError as exc:
            raise InputError(f"{net_name}: {exc} (--input-shape, {layout} layout)") from None
    if given is not None:
        shape, source = given, f"--input-shape ({layout} layout: {AXES[layout]})"
    else:
        ordered = _shape_from_array(tuple(array_shape), layout)
        if ordered is None:
            raise InputError(f"{net_name}: the first layer is a convolution and the file has no input layer shape; "
                             f"{array_name} has shape {tuple(array_shape)}, which does not say the image shape: give "
                             f"[batch, {AXES[layout]}, time] or [{AXES[layout]}, time] (--layout), or --input-shape")
        shape, source = to_lava_order(ordered, layout), f"{array_name}'s shape in the {layout} layout ({AXES[layout]})"
    try:
        network_shapes(layers, shape)
    except ValueError as exc:
        hint = ""
        if given is None:
            other = "lava-dl" if layout == "lava" else "lava"
            try:
                network_shapes(layers, to_lava_order(_shape_from_array(tuple(array_shape), other), other))
                hint = f"; it would fit with --layout {other}"
            except ValueError:
                pass
        raise InputError(f"{net_name}: input shape (W, H, C) = {shape} from {source} does not fit: {exc}{hint}") from None
    return shape, True
