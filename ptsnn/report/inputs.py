"""What a report runs on: host payloads from the synthetic test split or a folder, through ``host.onnx``."""

from __future__ import annotations

import numpy as np

from ptsnn.errors import InputError


def report_payloads(bundle, data: str = "synthetic", limit: int = 8, max_frames: int = 150):
    """``(payloads [steps_i, F] per utterance, names, labels or None)``: ``ptsnn.frontend.sources.load_utterances``
    (the synthetic corpus's test speakers, or a folder of audio / .npy features) through the bundle's
    ``host.onnx`` (``deploy.bundle_io.HostRunner``), as ``ptsnn run`` would feed the chip."""
    from ptsnn.deploy.bundle_io import HostRunner
    from ptsnn.frontend.sources import load_utterances

    host = HostRunner(bundle)
    if host.direct is not None and data == "synthetic":  # NIR import: seeded random input spike trains
        from ptsnn.deploy.direct_input import synthetic_spike_inputs

        spikes, names = synthetic_spike_inputs(bundle, limit, max_frames)
        return [host(x) for x in spikes], names, None
    utts = load_utterances(data, dict(bundle.manifest.get("frontend") or {}), limit, max_frames)
    host_inputs, names = utts.host_inputs, utts.names
    index = {c: i for i, c in enumerate(bundle.classes)}
    labels = [index[c] for c in utts.labels] if utts.labels is not None and all(c in index for c in utts.labels) \
        else None
    payloads = []
    for name, x in zip(names, host_inputs):
        x = np.asarray(x, np.float32)
        if host.takes_audio and x.ndim != 1:
            raise InputError(f"{name}: this bundle takes audio (its host part starts with the fbank front end), "
                             "not .npy features")
        if not host.takes_audio and (x.ndim != 2 or x.shape[1] != host.feature_dim):
            raise InputError(f"{name}: features of shape {x.shape}, expected [frames, {host.feature_dim}]")
        payloads.append(host(x))
    return payloads, names, labels
