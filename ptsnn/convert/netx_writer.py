"""Writer: the part of the chip IR that lava-dl netx can express, as a netx HDF5 network.

netx describes a *chain* of layers (each layer's only input is the previous layer). From the host input we
follow the graph while the current node feeds exactly one population and that population's only input is
the current node: for PTS-SNN that is ``input -> in_proj -> enc.0 -> ... -> enc.{B-1}`` (each encoder block
is one dense layer with a 2-D per-synapse delay matrix). Branches, multi-input populations (residual joins
with context current, coincidences) and the accumulator are not netx-expressible; they stay in the chip IR
(``chip_graph.json/.h5``), which the deploy stage builds from hand-made Lava processes.
"""

from __future__ import annotations

from pathlib import Path

from ptsnn.chip.ir import ChipGraph, CubaPopulation
from ptsnn.formats.netx import CubaNeuronSpec, DenseLayerSpec, InputLayerSpec, write_netx


def netx_chain(graph: ChipGraph) -> list[str]:
    """Names of the populations, in order, that form the netx-expressible chain from the first input."""
    if len(graph.inputs) != 1:
        return []
    pops = {p.name: p for p in graph.populations}
    chain, current = [], graph.inputs[0].name
    while True:
        consumers = graph.outgoing(current)
        if len(consumers) != 1 or consumers[0].target not in pops:
            return chain
        nxt = consumers[0].target
        if len(graph.incoming(nxt)) != 1:
            return chain
        chain.append(nxt)
        current = nxt


def write_netx_chain(graph: ChipGraph, path: str | Path) -> tuple[Path, list[str]] | None:
    """Write the chain as netx HDF5; returns (path, population names) or None when there is no chain."""
    chain = netx_chain(graph)
    if not chain:
        return None
    first = graph.inputs[0]
    layers: list = [InputLayerSpec(shape=(first.size,))]
    for name in chain:
        pop: CubaPopulation = next(p for p in graph.populations if p.name == name)
        (edge,) = graph.incoming(name)
        delay = edge.delay if edge.delay.any() else None
        layers.append(DenseLayerSpec(edge.weight, CubaNeuronSpec(pop.i_decay, pop.v_decay, pop.vth), delay,
                                     pop.bias if pop.bias.any() else None, name=name))
    return write_netx(path, layers), chain
