"""Frontend of the converter: a quantized PTS-SNN -> chip IR.

The model already computes in chip time with integer parameters (``PTSSNN.integer_graph``); this step only
types and validates that description: PLIF populations become CUBA populations (iDecay 4096, learned
vDecay, folded weights/biases/thresholds), per-channel shift delays become per-synapse delay matrices,
multi-input populations keep one :class:`Synapses` edge per input group, the coincidence population keeps
its fixed wiring, and the readout becomes an :class:`Accumulator` (Lava ``Sigma``) read by the host.
"""

from __future__ import annotations

import numpy as np

from ptsnn.chip.ir import Accumulator, ChipGraph, CubaPopulation, HostInput, Synapses


def chip_graph_from_model(model, meta: dict | None = None) -> ChipGraph:
    if not model.quantized:
        raise ValueError("the model must be quantized first (model.quantize())")
    g = model.integer_graph()
    cfg = model.cfg
    inputs = [HostInput("input", cfg.input_dim, message_bits=cfg.input_bits, levels=g["input"]["levels"],
                        steps_per_frame=cfg.steps_per_frame)]
    pops, syns = [], []
    for p in g["populations"]:
        pops.append(CubaPopulation(p["name"], p["size"], p["i_decay"], p["v_decay"], p["vth"], np.asarray(p["bias"]),
                                   role=p["kind"], scale_exponent=p.get("scale_exponent")))
        for grp in p["groups"]:
            w = np.asarray(grp["weight"], np.int64)
            delay = np.broadcast_to(np.asarray(grp["delays"], np.int64)[None, :], w.shape).copy()
            syns.append(Synapses(f"{grp['source']}->{p['name']}", grp["source"], p["name"], w, delay))
    ro = g["readout"]
    w = np.asarray(ro["weight"], np.int64)
    accs = [Accumulator("readout", w.shape[0], ro["scale_exponent"])]
    syns.append(Synapses(f"{ro['source']}->readout", ro["source"], "readout", w, np.zeros_like(w)))
    return ChipGraph(inputs, pops, accs, syns, flush_steps=g["flush_steps"], meta=dict(meta or {}))
