"""Child process: run a bundle's whole chip graph in Lava (``fixed_pt``), one utterance at a time.

Started by :func:`ptsnn.deploy.lava_runner.run_bundle` in its own process group (timeout, cleanup there).
Protocol: ``python -m ptsnn.deploy._lava_bundle_worker JOB.npz RESULT.npz``; the job holds ``bundle``,
``payload_<i>`` ``[steps_i, F]`` and ``steps`` (chip steps per utterance, flush included); the result
holds ``u<i>/<node>`` ``[size, steps_i]`` for every population and accumulator, written atomically.
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
        payload = job[f"payload_{i}"]
        padded = np.zeros((total, payload.shape[1]), np.int64)
        padded[: len(payload)] = payload  # the host sends nothing during the flush
        print(f"lava: utterance {i + 1}/{len(steps)}, {total} steps", file=sys.stderr, flush=True)
        for name, data in run_utterance(bundle, padded.T, total).items():
            out[f"u{i}/{name}"] = data
    tmp = result_path + ".tmp.npz"
    np.savez(tmp, **out)
    os.replace(tmp, result_path)


if __name__ == "__main__":
    run_job(sys.argv[1], sys.argv[2])
