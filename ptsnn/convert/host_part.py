"""The bundle's ``host.onnx``: which front end goes into it, and the onnxruntime check of what was written.

* ``fbank``: embedded (pure torch, exact in ONNX); input ``wave``.
* ``hf`` / ``torchaudio`` (wav2vec2, HuBERT, WavLM, data2vec-audio): the frozen model is loaded from the
  checkpoint's front-end spec (its weight sha256 checked), exported with the rest of the host part, and
  checked against PyTorch by onnxruntime (:mod:`ptsnn.convert.host_check`); input ``wave``, outputs
  ``payload`` and ``scaled``. If torch's exporter cannot export the model, host.onnx starts at the
  features and the bundle records the front end for the host runner (``ptsnn.deploy.host_frontend``).
* ``emotion2vec`` and anything else: host.onnx starts at the features; audio goes through the host runner
  (emotion2vec via FunASR) or features are given as ``.npy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ptsnn.errors import InputError

SSL_KINDS = ("hf", "torchaudio")


def write_host_onnx(model, path: Path, frontend: Mapping[str, Any], step=lambda msg: None) -> dict:
    """Write ``path``; returns what the conversion report records about it."""
    from ptsnn.convert.onnx_host import export_host_onnx
    from ptsnn.frontend import build_frontend

    spec = dict(frontend or {})
    kind = spec.get("kind", "")
    if kind == "fbank":
        export_host_onnx(model, path, frontend=build_frontend(spec))
        return dict(input="wave", frontend=kind, embedded=True)
    if kind not in SSL_KINDS:
        export_host_onnx(model, path, frontend=spec or None)
        return dict(input="features", frontend=kind or "none", embedded=False)
    step(f"loading the {kind} front end for the host part ({spec.get('path')})")
    fe = build_frontend(spec)  # InputError naming the folder when it moved or its weights changed
    try:
        export_host_onnx(model, path, frontend=fe, float_output=True)
    except InputError:
        raise
    except Exception as exc:  # an exporter limitation, not a user error: the host runner takes over
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        export_host_onnx(model, path, frontend=spec)
        return dict(input="features", frontend=kind, embedded=False, runner="ptsnn.deploy.host_frontend",
                    reason=f"torch.onnx could not export the {kind} model: {reason}")
    step("checking host.onnx against PyTorch (onnxruntime)")
    from ptsnn.convert.host_check import check_host_onnx, check_waves
    from ptsnn.convert.onnx_host import build_host_module

    graph = build_host_module(model, fe, float_output=True)
    check = check_host_onnx(graph, path, check_waves(fe.sample_rate, graph.min_samples))
    return dict(input="wave", frontend=kind, embedded=True, check=check)
