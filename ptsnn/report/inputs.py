"""What a report runs on: host payloads from the synthetic test split or a folder, through ``host.onnx``; for
TTFS bundles eye clips (``ttfs_payloads``)."""

from __future__ import annotations

import numpy as np

from ptsnn.errors import InputError


def report_payloads(bundle, data: str = "synthetic", limit: int = 8, max_frames: int = 150):
    """``(payloads [steps_i, F] per utterance, names, labels or None)``: ``ptsnn.frontend.sources.load_utterances``
    (the synthetic corpus's test speakers, or a folder of audio / .npy features) through the bundle's
    ``host.onnx`` (``deploy.bundle_io.HostRunner``), as ``ptsnn run`` would feed the chip."""
    from ptsnn.deploy.bundle_io import HostRunner
    from ptsnn.frontend.sources import load_utterances

    if (bundle.manifest or {}).get("model_kind") == "ttfs":
        return ttfs_payloads(bundle, data, limit)
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


def ttfs_payloads(bundle, data: str = "synthetic-eye", limit: int = 8):
    """TTFS bundles: ``synthetic-eye``, ``see:PATH``, a sequence folder or an ``.aedat4`` recording
    (``deploy.ttfs_inputs``, the input source of ``ptsnn run`` and ``ptsnn verify``) -> one ``{input, timing}``
    spike payload per clip."""
    from ptsnn.deploy.ttfs_inputs import bundle_clips, bundle_config, grid_input, sample_payloads

    clips = bundle_clips(bundle, "synthetic-eye" if data == "synthetic" else data, limit)
    q0 = grid_input(clips.x, bundle_config(bundle))
    labels = None if clips.labels is None else [int(v) for v in clips.labels]
    return sample_payloads(bundle.graph, q0), clips.names, labels
