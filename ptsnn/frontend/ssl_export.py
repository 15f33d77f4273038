"""An SSL front end as one exportable module: ``[batch, samples]`` waveform -> ``[batch, frames, dim]``.

:class:`SSLWaveModule` is :meth:`SSLFrontend._forward` written for batches and for tracing, so the frozen
wav2vec2 / HuBERT / WavLM / data2vec-audio model can be exported to ONNX together with the rest of the host
part (``ptsnn.convert.onnx_host``). It calls the same transformers model (shared, not copied). Each row is
one utterance (normalised over its own samples), exactly as the front end runs one utterance at a time.
Inputs shorter than :attr:`min_samples` must be zero-padded by the caller (the front end's ``pad_to``):
a traced graph cannot branch on the input length.
"""

from __future__ import annotations

import torch
from torch import nn

from ptsnn.errors import InputError
from ptsnn.frontend.base import select_layer
from ptsnn.frontend.ssl import SSLFrontend


class SSLWaveModule(nn.Module):
    def __init__(self, frontend: SSLFrontend):
        super().__init__()
        if frontend.layer == "all":
            raise InputError(f"{frontend.kind} front end with layer='all' gives stacked layers; the host part "
                             "takes one layer's features (choose layer='last' or an index)")
        self.model = frontend.model
        self.layer = frontend.layer
        self.normalize = frontend.normalize
        self.norm_eps = frontend.norm_eps
        self.min_samples = int(frontend.receptive_field)
        self.hop_samples = int(round(frontend.sample_rate / frontend.frame_rate))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            mean = wave.mean(dim=-1, keepdim=True)
            var = ((wave - mean) ** 2).mean(dim=-1, keepdim=True)  # == var(unbiased=False), traceable
            wave = (wave - mean) / torch.sqrt(var + self.norm_eps)
        out = self.model(wave, output_hidden_states=self.layer != "last", return_dict=True)
        return select_layer(out.hidden_states, out.last_hidden_state, self.layer)


def ssl_wave_module(frontend: SSLFrontend) -> SSLWaveModule:
    """The module for ``frontend`` (refuses ``layer='all'``, which no trained model takes)."""
    if not isinstance(frontend, SSLFrontend):
        raise TypeError(f"expected an SSLFrontend, got {type(frontend).__name__}")
    return SSLWaveModule(frontend)
