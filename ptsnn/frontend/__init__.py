"""Host-side front ends: frozen waveform -> frame-feature extractors that feed the spiking network.

``build_frontend`` is the one entry point; see docs/frontend.md. Names:

* ``fbank`` - log-mel filterbank in pure torch (default; ONNX-exportable), options of :class:`FbankFrontend`;
* ``hf`` (``path=``) - HuggingFace-format wav2vec2 / HuBERT / WavLM / data2vec-audio folder, offline;
* ``torchaudio`` (``path=``) - torchaudio bundle ``.pth`` state dict, read without torchaudio;
* ``emotion2vec`` (``path=``) - FunASR emotion2vec model directory, through FunASR (optional extra);
* ``features`` (``path=`` or ``dir=``) - directory of precomputed ``.npy`` features (e.g. emotion2vec).

``"hf:/models/wavlm"`` is short for ``build_frontend("hf", path="/models/wavlm")``. A spec dict (from
``FrontEnd.spec``, e.g. stored in a checkpoint) rebuilds the same front end; keyword arguments override
its fields (e.g. ``path=`` when the model folder moved; the weight hash is still checked).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ptsnn.errors import InputError
from ptsnn.frontend.base import (
    FRAME_RATE,
    SAMPLE_RATE,
    FrontEnd,
    LayerWeightedSum,
    file_sha256,
    spec_hash,
)
from ptsnn.frontend.cache import default_cache_dir, extract_features
from ptsnn.frontend.fbank import FbankFrontend, FbankModule, export_onnx
from ptsnn.frontend.features import FeatureDirFrontend
from ptsnn.frontend.ssl import SSLFrontend, load_hf
from ptsnn.frontend.torchaudio_bundle import load_torchaudio

__all__ = [
    "FRAME_RATE",
    "SAMPLE_RATE",
    "FbankFrontend",
    "FbankModule",
    "FeatureDirFrontend",
    "FrontEnd",
    "LayerWeightedSum",
    "SSLFrontend",
    "build_frontend",
    "default_cache_dir",
    "export_onnx",
    "extract_features",
    "file_sha256",
    "load_hf",
    "load_torchaudio",
    "spec_hash",
    "FRONTENDS",
]


def _features(
    path: str | None = None,
    *,
    dir: str | None = None,  # noqa: A002  (the spec's field name)
    dim: int | None = None,
    frame_rate: float = FRAME_RATE,
    audio_root: str | None = None,
) -> FeatureDirFrontend:
    directory = dir if dir is not None else path
    if directory is None:
        raise InputError("features front end: give the features directory (path= or dir=)")
    return FeatureDirFrontend(directory, dim=dim, frame_rate=frame_rate, audio_root=audio_root)


def _needs_path(loader: Callable[..., FrontEnd], name: str) -> Callable[..., FrontEnd]:
    def build(path: str | None = None, **kw: Any) -> FrontEnd:
        if path is None:
            raise InputError(f"{name} front end: give the model path (path=...)")
        return loader(path, **kw)

    build.__wrapped__ = loader  # type: ignore[attr-defined]  # for option checking
    return build


def _load_emotion2vec(path: str, *, dim: int = 768, sha256: str | None = None) -> FrontEnd:
    return _emotion2vec().Emotion2vecFrontend(path, dim=dim, sha256=sha256)  # lazy: FunASR is optional


# kind -> (build from options, rebuild from spec)
FRONTENDS: dict[str, tuple[Callable[..., FrontEnd], Callable[..., FrontEnd]]] = {
    "fbank": (FbankFrontend, lambda spec, **kw: FbankFrontend.from_spec({**spec, **kw})),
    "hf": (_needs_path(load_hf, "hf"), lambda spec, **kw: _ssl_from_spec("hf", spec, **kw)),
    "torchaudio": (
        _needs_path(load_torchaudio, "torchaudio"),
        lambda spec, **kw: _ssl_from_spec("torchaudio", spec, **kw),
    ),
    "emotion2vec": (_needs_path(_load_emotion2vec, "emotion2vec"),
                    lambda spec, **kw: _emotion2vec().Emotion2vecFrontend.from_spec(spec, **kw)),
    "features": (_features, lambda spec, **kw: FeatureDirFrontend.from_spec(spec, **kw)),
}


def _emotion2vec():
    from ptsnn.frontend import emotion2vec

    return emotion2vec


def _ssl_from_spec(kind: str, spec: Mapping[str, Any], **kw: Any) -> FrontEnd:
    from ptsnn.frontend import ssl, torchaudio_bundle

    module = ssl if kind == "hf" else torchaudio_bundle
    return module.from_spec(dict(spec), **kw)


def _check_options(kind: str, factory: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    target = getattr(factory, "__wrapped__", factory)
    params = inspect.signature(target).parameters
    allowed = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    if kind != "fbank":
        allowed.add("path")
    allowed.discard("version")
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise InputError(
            f"{kind} front end: unknown option(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def build_frontend(spec_or_name: str | Mapping[str, Any], **kwargs: Any) -> FrontEnd:
    """A front end from a name (``fbank``, ``hf``, ``torchaudio``, ``features``, or ``name:path``) or a spec."""
    if isinstance(spec_or_name, Mapping):
        kind = spec_or_name.get("kind")
        if kind not in FRONTENDS:
            raise InputError(f"front-end spec: kind {kind!r} is unknown (known: {', '.join(FRONTENDS)})")
        return FRONTENDS[kind][1](dict(spec_or_name), **kwargs)
    if not isinstance(spec_or_name, str):
        raise InputError(f"front end: expected a name or a spec dict, got {type(spec_or_name).__name__}")
    kind, sep, path = spec_or_name.partition(":")
    if kind not in FRONTENDS:
        raise InputError(f"front end: {kind!r} is unknown (known: {', '.join(FRONTENDS)})")
    if sep:
        if kind == "fbank":
            raise InputError(f"front end: {spec_or_name!r} (fbank takes no path)")
        kwargs = {**kwargs, "path": path}
    factory = FRONTENDS[kind][0]
    _check_options(kind, factory, kwargs)
    return factory(**kwargs)
