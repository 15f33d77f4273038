"""ONNX writer for the host part of a trained PTS-SNN: features (or waveform) in, graded-spike payloads out.

The host part is what runs on the CPU before the chip (see :class:`ptsnn.train.model.HostInput`):

    [wave ─► fbank | SSL model ─►] features ─► LayerNorm ─► tanh(xi·) ─► round(levels·) ─► repeat ─► payload

:func:`build_host_module` wraps the trained model's own ``model.host`` module (shared, not copied: the
exported parameters are the model's) and, when given the front end itself (an fbank front end, or a loaded
wav2vec2 / HuBERT / WavLM / data2vec-audio :class:`~ptsnn.frontend.SSLFrontend`), its module in front of it. :func:`export_host_onnx` writes it as one self-contained, deterministic ONNX file. See
docs/convert_onnx.md.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ptsnn.errors import InputError
from ptsnn.fileio import atomic_write_bytes

PAYLOAD = "payload"  # [batch, steps, input_dim]: integer-valued float32 in -levels..levels
SCALED = "scaled"  # optional second output: levels * tanh(xi * LayerNorm(x)) before rounding
FEATURES = "features"  # input [batch, frames, input_dim] without an embedded front end
WAVE = "wave"  # input [batch, samples] with the front end (fbank or SSL model) embedded
GRAPH_NAME = "ptsnn_host"


class HostGraph(nn.Module):
    """``[front end ->] model.host (quantized) -> repeat each frame steps_per_frame times``.

    ``host`` is the trained model's :class:`~ptsnn.train.model.HostInput` itself; its forward (LayerNorm,
    tanh, ``round_ste``) is called, not re-implemented. With ``float_output`` the forward also returns the
    pre-rounding values ``levels * tanh(xi * LayerNorm(x))`` (for checking and debugging).
    """

    def __init__(self, host: nn.Module, steps_per_frame: int, frontend: nn.Module | None = None,
                 float_output: bool = False, min_samples: int = 1):
        super().__init__()
        if int(steps_per_frame) < 1:
            raise InputError(f"steps_per_frame: {steps_per_frame} (expected >= 1)")
        self.frontend = frontend
        self.min_samples = int(min_samples)  # shortest waveform the embedded front end takes (callers pad)
        self.host = host
        self.steps_per_frame = int(steps_per_frame)
        self.float_output = bool(float_output)

    @property
    def input_name(self) -> str:
        return WAVE if self.frontend is not None else FEATURES

    def _repeat(self, x: torch.Tensor) -> torch.Tensor:
        # == x.repeat_interleave(spf, dim=1) (what PTSSNN.forward does), written as Tile + Reshape for export
        if self.steps_per_frame == 1:
            return x
        return x.unsqueeze(2).repeat(1, 1, self.steps_per_frame, 1).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        feats = self.frontend(x) if self.frontend is not None else x
        payload = self._repeat(self.host(feats, True))
        if not self.float_output:
            return payload
        return payload, self._repeat(self.host(feats, False) * self.host.levels)


# ------------------------------------------------------------------------------------------ front end
EMBEDDABLE = ("fbank", "hf", "torchaudio")  # front ends whose computation goes into host.onnx


def _frontend_info(frontend: Any) -> tuple[str, Any, dict[str, Any] | None]:
    """``(kind, FrontEnd to embed or None, spec or None)``. An fbank front end is built from a spec or name
    (cheap, no files); an SSL front end is embedded only when passed loaded (a spec dict is not loaded
    here: its graph starts at the features and the host runner computes them, docs/convert_onnx.md)."""
    from ptsnn.frontend import FRONTENDS, FrontEnd, build_frontend

    if frontend is None:
        return "", None, None
    if isinstance(frontend, FrontEnd):
        spec = frontend.spec
        return frontend.kind, (frontend if frontend.kind in EMBEDDABLE else None), spec
    if isinstance(frontend, Mapping):
        kind = str(frontend.get("kind", ""))
        if kind not in FRONTENDS:
            raise InputError(f"front-end spec: kind {kind!r} is unknown (known: {', '.join(FRONTENDS)})")
        return kind, (build_frontend(dict(frontend)) if kind == "fbank" else None), dict(frontend)
    if isinstance(frontend, str):
        kind = frontend.partition(":")[0]
        if kind == "fbank":
            fe = build_frontend(frontend)
            return kind, fe, fe.spec
        if kind not in FRONTENDS:
            raise InputError(f"front end: {kind!r} is unknown (known: {', '.join(FRONTENDS)})")
        return kind, None, None
    raise InputError(f"front end: expected a FrontEnd, a spec dict or a name, got {type(frontend).__name__}")


def _check_model(model: nn.Module) -> None:
    host = getattr(model, "host", None)
    if host is None or not hasattr(host, "norm") or not hasattr(host, "levels") or not hasattr(model, "cfg"):
        raise TypeError(f"expected a PTSSNN model (with .host and .cfg), got {type(model).__name__}")


def _frontend_module(fe: Any) -> tuple[nn.Module, int]:
    """The embedded front end's module and the shortest waveform it takes."""
    if fe.kind == "fbank":
        return fe.module, int(fe.module.kernel.shape[-1])
    from ptsnn.frontend.ssl_export import ssl_wave_module

    module = ssl_wave_module(fe)
    return module, module.min_samples


def build_host_module(model: nn.Module, frontend: Any = None, *, float_output: bool = False) -> HostGraph:
    """The host feature path of ``model`` as a module: ``[B, frames, F]`` features -> ``[B, steps, F]``
    payloads, ``steps = frames * cfg.steps_per_frame``.

    ``frontend`` (a :class:`~ptsnn.frontend.FrontEnd`, a spec dict such as a checkpoint's ``frontend``, or
    a name): an fbank front end, or a loaded SSL front end (``hf``/``torchaudio``), is put in front and the
    input is the waveform ``[B, samples]`` (at least :attr:`HostGraph.min_samples` long); anything else
    (SSL specs, precomputed features) is not loaded and the input stays the features. ``model.host`` is
    shared, not copied; the module's training flag is not touched (the host path has no train/eval
    difference; the exporter runs it in eval mode).
    """
    _check_model(model)
    kind, fe, _ = _frontend_info(frontend)
    fe_module, min_samples = None, 1
    if fe is not None:
        if fe.dim != model.cfg.input_dim:
            raise InputError(f"{kind} front end gives {fe.dim} features but the model takes "
                             f"{model.cfg.input_dim} (model.input_dim)")
        fe_module, min_samples = _frontend_module(fe)
    return HostGraph(model.host, model.cfg.steps_per_frame, fe_module, float_output, min_samples)


# ------------------------------------------------------------------------------------------- export
@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Run in eval mode and give every submodule its own training flag back afterwards."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _example_input(graph: HostGraph) -> torch.Tensor:
    p = next(graph.host.parameters())
    # batch 2 and > 1 frames: torch.export specialises dimensions whose example size is 0 or 1
    gen = torch.Generator().manual_seed(0)
    if graph.frontend is not None:
        hop = int(getattr(graph.frontend, "hop_length", 0) or getattr(graph.frontend, "hop_samples", 320))
        n = graph.min_samples + 4 * hop
        if hasattr(graph.frontend, "hop_length"):  # fbank: zeros (as before; the graph has no data branches)
            return torch.zeros(2, n, dtype=p.dtype, device=p.device)
        return (0.1 * torch.randn(2, n, generator=gen)).to(p.dtype).to(p.device)  # SSL: no 0/0 in the norm
    return torch.randn(2, 5, graph.host.norm.normalized_shape[-1], generator=gen).to(p.dtype).to(p.device)


def _output_names(graph: HostGraph) -> list[str]:
    return [PAYLOAD, SCALED] if graph.float_output else [PAYLOAD]


def _export_legacy(graph: HostGraph, example: torch.Tensor, opset: int) -> bytes:
    time_axis = "samples" if graph.frontend is not None else "frames"
    axes = {graph.input_name: {0: "batch", 1: time_axis}}
    for name in _output_names(graph):
        axes[name] = {0: "batch", 1: "steps"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # chosen on purpose (docs/convert_onnx.md); its deprecation notice would only be noise here
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        # transformers' shape asserts and Python branches on sizes: constant for the traced lengths, checked
        # against PyTorch at other lengths after export (ptsnn.convert.host_check)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(graph, (example,), buf, dynamo=False, input_names=[graph.input_name],
                          output_names=_output_names(graph), dynamic_axes=axes, opset_version=opset,
                          do_constant_folding=True, verbose=False)
    return buf.getvalue()


def _export_dynamo(graph: HostGraph, example: torch.Tensor, opset: int) -> bytes:
    if graph.frontend is not None:
        time_dim = torch.export.Dim("samples", min=graph.min_samples)
    else:
        time_dim = torch.export.Dim("frames")
    # no file argument: the ONNXProgram is kept in memory (initializers inline), so no sidecar .onnx.data
    program = torch.onnx.export(graph, (example,), dynamo=True, input_names=[graph.input_name],
                                output_names=_output_names(graph), opset_version=opset, verbose=False,
                                dynamic_shapes=({0: torch.export.Dim("batch"), 1: time_dim},))
    return program.model_proto.SerializeToString()


def _strip(graph: Any) -> None:
    """Drop what the exporters embed that is not the computation (doc strings, stack traces, source
    paths and line numbers in ``metadata_props``), recursively through subgraphs."""
    import onnx

    graph.doc_string = ""
    del graph.metadata_props[:]
    for vi in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        vi.doc_string = ""
        if hasattr(vi, "metadata_props"):
            del vi.metadata_props[:]
    for node in graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _strip(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _strip(g)


def _set_dims(value_info: Any, dims: tuple[str | int, ...]) -> None:
    shape = value_info.type.tensor_type.shape
    if len(shape.dim) != len(dims):
        raise RuntimeError(f"ONNX export: {value_info.name} has rank {len(shape.dim)}, expected {len(dims)}")
    for dim, want in zip(shape.dim, dims):
        if isinstance(want, int):
            dim.dim_value = want
        else:
            dim.dim_param = want


def normalise(proto: Any, metadata: Mapping[str, str], features: int | None = None) -> Any:
    """Make an exported ``ModelProto`` depend only on the model: strip exporter-run details, set
    ``metadata`` (sorted) as the model's ``metadata_props`` and, given the feature size, name the
    input/output axes the same way for both exporters (``batch``, ``frames``/``samples``, ``steps``)."""
    if features is not None:
        if len(proto.graph.input) != 1:
            raise RuntimeError(f"ONNX export: expected one graph input, got {len(proto.graph.input)}")
        inp = proto.graph.input[0]
        _set_dims(inp, ("batch", "samples") if inp.name == WAVE else ("batch", "frames", features))
        for out in proto.graph.output:
            _set_dims(out, ("batch", "steps", features))
    proto.doc_string = ""
    proto.graph.name = GRAPH_NAME
    _strip(proto.graph)
    for fn in proto.functions:
        fn.doc_string = ""
        if hasattr(fn, "metadata_props"):
            del fn.metadata_props[:]
        for node in fn.node:
            node.doc_string = ""
            del node.metadata_props[:]
    del proto.metadata_props[:]
    for key in sorted(metadata):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(metadata[key])
    return proto


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def export_host_onnx(model: nn.Module, path: str | os.PathLike[str], frontend: Any = None, opset: int = 18, *,
                     dynamo: bool = False, float_output: bool = False) -> Path:
    """Write the host part of ``model`` (see :func:`build_host_module`) to ``path`` as one ONNX file.

    Input ``features`` ``[batch, frames, input_dim]``, or ``wave`` ``[batch, samples]`` when ``frontend``
    is embedded (fbank, or a loaded SSL front end; shorter waveforms than metadata ``ptsnn.min_samples``
    must be zero-padded); output ``payload`` ``[batch, steps, input_dim]`` (float32 holding integers in
    ``-levels..levels``), plus ``scaled`` (the values before rounding) with ``float_output``. Batch and
    time axes are dynamic. The file is self-contained (no ``.onnx.data``), written through a temp file
    and ``os.replace``, checked with ``onnx.checker`` (full check), and byte-identical for the same model.
    ``dynamo=False`` (default) uses the TorchScript exporter, ``True`` the torch.export-based one.
    Returns the path written.
    """
    import onnx

    path = Path(path)
    kind, fe, spec = _frontend_info(frontend)
    graph = build_host_module(model, fe, float_output=float_output)  # front end built once (or None)
    example = _example_input(graph)
    with eval_mode(graph), torch.no_grad():
        data = (_export_dynamo if dynamo else _export_legacy)(graph, example, int(opset))
    proto = onnx.load_model_from_string(data)
    metadata = {
        "ptsnn.input": graph.input_name,
        "ptsnn.frontend": kind or "none",
        "ptsnn.steps_per_frame": str(graph.steps_per_frame),
        "ptsnn.payload_levels": str(int(model.host.levels)),
        "ptsnn.flush_steps": str(int(getattr(model, "flush_steps", 0))),
    }
    if graph.frontend is not None:  # the runner pads shorter waveforms with zeros (as the front end does)
        metadata["ptsnn.min_samples"] = str(graph.min_samples)
        metadata["ptsnn.sample_rate"] = str(int(fe.sample_rate))
    if spec is not None:
        from ptsnn.frontend.base import output_identity, spec_hash

        metadata["ptsnn.frontend_spec_hash"] = spec_hash(output_identity(spec))
    normalise(proto, metadata, int(model.cfg.input_dim))
    onnx.checker.check_model(proto, full_check=True)
    _write_atomic(path, proto.SerializeToString())
    return path
