"""Child process that runs netx networks in Lava's CPU simulation (``fixed_pt``).

Started by :mod:`ptsnn.deploy.lava_runner` in its own session so that the parent can always kill the whole
process group (Lava's runtime forks its own processes and hangs rather than fails when one of them dies).
Protocol: ``python -m ptsnn.deploy._lava_worker JOB.npz RESULT.npz``; the job holds ``netx_path``,
``inputs`` ``[batch, *input_shape, time]`` (or flat ``[batch, neurons, time]``), ``input_message_bits`` and
``num_layers`` (-1: all) and optionally ``input_shape`` (``hdf5.Network(input_shape=...)``, Lava's (W, H, C)
order), ``reset`` ([reset_interval, reset_offset]), ``spike_exp`` and ``skip_layers``; the result holds ``layer_<i>``
``[batch, *shape, time]`` for every netx layer process and is written atomically.

Where the network starts with an input layer that has a neuron (netx's ``Input`` block), the data is sent to
that neuron's ``a_in``: netx leaves the block's own ``inp`` port unconnected inside (the compiler then fails
on ``net.inp``), and lava-dl's own tests feed such networks the same way.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def run_job(job_path: str, result_path: str) -> None:
    from ptsnn import compat

    compat.apply()
    from lava.lib.dl.netx import hdf5
    from lava.lib.dl.netx.blocks.process import Input
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    job = np.load(job_path, allow_pickle=False)
    netx_path = str(job["netx_path"])
    inputs = job["inputs"].astype(np.int32)
    message_bits = int(job["input_message_bits"])
    num_layers = int(job["num_layers"]) if "num_layers" in job.files else -1
    shape = tuple(int(d) for d in job["input_shape"]) if "input_shape" in job.files else None
    options = {}  # further hdf5.Network(...) arguments
    if "reset" in job.files:  # reset_interval / reset_offset: LIFReset neurons
        options.update(reset_interval=int(job["reset"][0]), reset_offset=int(job["reset"][1]))
    if "spike_exp" in job.files:
        options["spike_exp"] = int(job["spike_exp"])
    if "skip_layers" in job.files:
        options["skip_layers"] = int(job["skip_layers"])
    batch, steps = inputs.shape[0], inputs.shape[-1]
    per_layer: dict[int, list[np.ndarray]] = {}
    for b in range(batch):
        net = hdf5.Network(net_config=netx_path, input_message_bits=message_bits,
                           num_layers=None if num_layers < 0 else num_layers, input_shape=shape, **options)
        target = net.in_layer.neuron.a_in if isinstance(net.in_layer, Input) else net.inp
        source = Source(data=inputs[b].reshape(*target.shape, steps))
        source.s_out.connect(target)
        sinks = []
        for layer in net.layers:
            sink = Sink(shape=layer.out.shape, buffer=steps)
            layer.out.connect(sink.a_in)
            sinks.append(sink)
        print(f"lava: sample {b + 1}/{batch}, {steps} steps, {len(net.layers)} layers", file=sys.stderr, flush=True)
        try:
            net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
            for i, sink in enumerate(sinks):
                per_layer.setdefault(i, []).append(sink.data.get().astype(np.int32))
        finally:
            net.stop()
    tmp = result_path + ".tmp.npz"
    np.savez(tmp, **{f"layer_{i}": np.stack(v) for i, v in per_layer.items()})
    os.replace(tmp, result_path)


if __name__ == "__main__":
    from ptsnn.deploy import _guard

    _guard.install(int(os.environ.get("PTSNN_PARENT_PID", "0")))  # before Lava starts any thread or process
    run_job(sys.argv[1], sys.argv[2])
