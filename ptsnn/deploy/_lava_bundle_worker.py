"""Child process: run a bundle's whole chip graph in Lava (``fixed_pt``), one utterance at a time.

Started by :func:`ptsnn.deploy.lava_runner.run_bundle` in its own process group (timeout, cleanup there).
Protocol: ``python -m ptsnn.deploy._lava_bundle_worker JOB.npz RESULT.npz``; the job holds ``bundle``,
``payload_<i>`` ``[steps_i, F]`` and ``steps`` (chip steps per utterance, flush included); the result
holds ``u<i>/<node>`` ``[size, steps_i]`` for every population and accumulator and ``u<i>/v_final/<pop>``
(each LIF population's voltage after the last step), written atomically. A bundle with several host inputs
gets ``payload_<i>/<input name>`` instead of ``payload_<i>``.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def run_job(job_path: str, result_path: str) -> None:
    from ptsnn.deploy.lava_graph import run_utterance

    job = np.load(job_path, allow_pickle=False)
    bundle = str(job["bundle"])
    steps = job["steps"].tolist()
    out = {}
    for i, total in enumerate(steps):
        if f"payload_{i}" in job:  # one host input
            payloads = {None: job[f"payload_{i}"]}
        else:  # several: payload_<i>/<input name>
            prefix = f"payload_{i}/"
            payloads = {k[len(prefix):]: job[k] for k in job.files if k.startswith(prefix)}
        padded = {}
        for name, payload in payloads.items():
            padded[name] = np.zeros((total, payload.shape[1]), np.int64)
            padded[name][: len(payload)] = payload  # the host sends nothing during the flush
            padded[name] = padded[name].T
        print(f"lava: utterance {i + 1}/{len(steps)}, {total} steps", file=sys.stderr, flush=True)
        for name, data in run_utterance(bundle, padded[None] if None in padded else padded, total).items():
            out[f"u{i}/{name}"] = data
    tmp = result_path + ".tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, result_path)


if __name__ == "__main__":
    from ptsnn.deploy import _guard

    _guard.install(int(os.environ.get("PTSNN_PARENT_PID", "0")))  # before Lava starts any thread or process
    run_job(sys.argv[1], sys.argv[2])
