"""PTS-SNN: prompt-tuned temporal-shift spiking network for speech emotion recognition.

Host part (CPU, never converted): ``tanh(xi * LayerNorm(features))`` quantized to signed ``input_bits``
graded-spike payloads. Chip part, all in chip time (see ``spiking.py`` and docs/model.md):

    input ─► in_proj ─► enc.0 ─► … ─► enc.{B-1} = E ─┬──────────────────────────────► cal.0 ─► … ─► readout
                                                     ├► key ─► score (prompts) ┐           ▲
                                                     └► value (+1 delay) ──────┴► coincide ─► context ─┘

* Temporal Shift Spiking Encoder: each block is one PLIF population fed by one synapse group from the
  previous one whose input channels are shifted in time by per-channel delays (1/shift_div of channels from
  the past: delay 2, 1/shift_div from the future: delay 0, the rest: delay 1, so a shift "toward the future"
  is a one-step latency on all other channels): a dense map plus a learned residual identity ``W + diag(r)``
  on the shifted input, one 8-bit synapse matrix. Calibrated blocks add a second group (context current).
* Spiking Sparse Linear Attention (streaming form): key spikes are scored against the learnable soft
  prompts (a dense group whose rows are the prompt vectors; the score neurons spike only for strong matches,
  hence sparse); each prompt's binary score gates the value spikes (coincidence = product of binary spikes)
  and a slow PLIF integrator per (prompt, value channel) keeps the prompt's aggregated context. This is the
  causal, running form of linear attention ``sum_t phi(q.k_t) v_t`` (the paper's whole-utterance context
  cannot stream; docs/model.md).
* Context-Aware Membrane Potential Calibration: the context neurons drive a dense group of extra synaptic
  current into the calibrated blocks' PLIF neurons: a prompt-dependent bias voltage.
* Readout: a non-spiking accumulator of synaptic input (Lava ``Sigma``); logits are its value at the end of
  the utterance divided by the number of steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ptsnn.chip import ir
from ptsnn.chip.ir import Accumulator, ChipGraph, CubaPopulation, Synapses
from ptsnn.train.config import ModelConfig
from ptsnn.train.spiking import (CoincidencePopulation, FrozenScale, PLIFPopulation, SynapseGroup, quantize_weight,
                                 round_ste, NO_CURRENT_MEMORY_I_DECAY, MAX_DECAY_REGISTER)


@dataclass
class ModelOutput:
    logits: torch.Tensor  # [B, classes]
    rates: dict[str, torch.Tensor]  # firing rate per spiking population (mean over valid steps and batch)
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)  # [B, T, N] when asked for
    steps: torch.Tensor | None = None  # [B] readout window per sample (chip steps incl. flush)


def shift_delays(channels: int, shift_div: int) -> tuple[int, ...]:
    fold = channels // shift_div
    return tuple(2 if c < fold else 0 if c < 2 * fold else 1 for c in range(channels))


class HostInput(nn.Module):
    """Host-side soft saturation and graded-spike quantization of the front-end features."""

    def __init__(self, dim: int, xi: float, input_bits: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.xi = float(xi)
        self.levels = 2 ** (input_bits - 1) - 1  # symmetric signed payload: -q..q

    def forward(self, x: torch.Tensor, quantized: bool) -> torch.Tensor:
        y = torch.tanh(self.xi * self.norm(x))
        return round_ste(y * self.levels) if quantized else y


class PTSSNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        c = cfg
        self.host = HostInput(c.input_dim, c.xi, c.input_bits)
        plif = dict(threshold=c.threshold, surrogate=c.surrogate, alpha=c.surrogate_alpha)
        pops: list[nn.Module] = []

        def block(name: str, source: str, extra: list[SynapseGroup] = ()) -> PLIFPopulation:
            groups = [SynapseGroup(source, c.hidden, c.hidden, shift_delays(c.hidden, c.shift_div), identity_gain=1.0),
                      *extra]
            return PLIFPopulation(name, c.hidden, groups, c.tau_init, **plif)

        pops.append(PLIFPopulation("in_proj", c.hidden,
                                   [SynapseGroup("input", c.input_dim, c.hidden, input_scale=1.0 / self.host.levels)],
                                   c.tau_init, **plif))
        prev = "in_proj"
        for i in range(c.blocks):
            pops.append(block(f"enc.{i}", prev))
            prev = f"enc.{i}"
        encoder_out = prev
        ctx = c.prompts * c.value_dim
        pops += [
            PLIFPopulation("key", c.key_dim, [SynapseGroup(encoder_out, c.hidden, c.key_dim)], c.tau_init, **plif),
            PLIFPopulation("score", c.prompts, [SynapseGroup("key", c.key_dim, c.prompts)], c.tau_init, **plif),
            # +1 delay: value spikes meet the score spikes of the same encoder step (score is two hops away)
            PLIFPopulation("value", c.value_dim, [SynapseGroup(encoder_out, c.hidden, c.value_dim, (1,) * c.hidden)],
                           c.tau_init, **plif),
            CoincidencePopulation("coincide", "score", c.prompts, "value", c.value_dim),
            PLIFPopulation("context", ctx, [SynapseGroup("coincide", ctx, ctx, diagonal=True, init_scale=2.0)],
                           c.context_tau_init, bias=False, **plif),
        ]
        for i in range(c.calibrated_blocks):
            calib = SynapseGroup("context", ctx, c.hidden, init_scale=0.5)
            pops.append(block(f"cal.{i}", prev if i else encoder_out, [calib]))
            prev = f"cal.{i}"
        self.populations = nn.ModuleList(pops)
        self.readout = SynapseGroup(prev, c.hidden, c.num_classes)
        self.dropout = nn.Dropout(c.dropout)
        # quantization state is in buffers so that a checkpoint restores it exactly
        self.register_buffer("quantized_flag", torch.tensor(False))
        self.register_buffer("readout_exponent", torch.tensor(0, dtype=torch.long))
        self.flush_steps = self._longest_latency()

    # -------------------------------------------------------------------------------------- structure
    def _longest_latency(self) -> int:
        """Steps from the first input to the last readout contribution: the flush a run needs."""
        latency = {"input": 0}
        for pop in self.populations:
            if isinstance(pop, CoincidencePopulation):
                latency[pop.name] = max(latency[pop.source_a], latency[pop.source_b]) + 1
            else:
                latency[pop.name] = max(latency[g.source] + 1 + max(g.delays) for g in pop.groups)
        return latency[self.readout.source] + 1

    def population(self, name: str) -> nn.Module:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    def param_breakdown(self) -> dict[str, int]:
        """Trainable parameters per module, in data-flow order (``ptsnn model summary``)."""
        rows = {"host.layernorm": sum(p.numel() for p in self.host.parameters() if p.requires_grad)}
        for pop in self.populations:
            rows[pop.name] = sum(p.numel() for p in pop.parameters() if p.requires_grad)
        rows["readout"] = sum(p.numel() for p in self.readout.parameters() if p.requires_grad)
        return rows

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # -------------------------------------------------------------------------------------- forward
    def chip_steps(self, lengths: torch.Tensor) -> torch.Tensor:
        """Readout window per sample: its frames' steps plus the flush."""
        return lengths * self.cfg.steps_per_frame + self.flush_steps

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None,
                record: bool = False) -> ModelOutput:
        """``features`` ``[B, frames, input_dim]``; ``lengths`` ``[B]`` valid frames (default: all)."""
        batch, frames, _ = features.shape
        if lengths is None:
            lengths = torch.full((batch,), frames, dtype=torch.long, device=features.device)
        spf = self.cfg.steps_per_frame
        x = self.host(features, self.quantized)
        x = x.repeat_interleave(spf, dim=1) if spf > 1 else x
        steps_total = frames * spf + self.flush_steps
        valid_in = torch.arange(frames * spf, device=x.device)[None, :] < (lengths * spf)[:, None]
        x = x * valid_in[..., None]  # the host sends nothing after the utterance ends
        x = torch.cat([x, x.new_zeros(batch, self.flush_steps, x.shape[2])], 1)
        window = torch.arange(steps_total, device=x.device)[None, :] < self.chip_steps(lengths)[:, None]

        acts: dict[str, torch.Tensor] = {"input": x}
        rates: dict[str, torch.Tensor] = {}
        denom = window.sum().clamp(min=1)
        for pop in self.populations:
            s = pop(acts, self.quantized)
            if self.training and not self.quantized and isinstance(pop, PLIFPopulation) and pop.name.startswith(("enc", "cal")):
                s = self.dropout(s)
            acts[pop.name] = s
            rates[pop.name] = (s * window[..., None]).sum() / (denom * s.shape[-1])
        logits = self._readout(acts[self.readout.source], window)
        spikes = {k: v for k, v in acts.items() if k != "input"} if record else {}
        if record:
            spikes["input"] = x
        return ModelOutput(logits, rates, spikes, self.chip_steps(lengths))

    def _readout(self, pre: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        n = window.sum(1, keepdim=True).to(pre.dtype)
        if not self.quantized:
            return (self.readout.current(pre, self.readout.weight) * window[..., None]).sum(1) / n
        w = self.readout_integer_weight()
        total = (self.readout.current(pre.double(), w.double()) * window[..., None]).sum(1)  # Sigma's state
        return (total / (self.readout_scale.scale * n.double())).float()

    @torch.no_grad()
    def data_init(self, features: torch.Tensor, lengths: torch.Tensor | None = None,
                  target: tuple[float, float] = (0.04, 0.25), max_rounds: int = 30) -> dict[str, float]:
        """Data-driven start (LSUV-style, for spikes): scale each population's synaptic weights, in data-flow
        order, until its firing rate on ``features`` lies in ``target``. Deep spiking stacks otherwise start
        silent and pass no gradient. Returns the rates reached."""
        if self.quantized:
            raise RuntimeError("data_init is for float training")
        was_training = self.training
        self.eval()
        batch, frames, _ = features.shape
        spf = self.cfg.steps_per_frame
        x = self.host(features, False).repeat_interleave(spf, dim=1)
        x = torch.cat([x, x.new_zeros(batch, self.flush_steps, x.shape[2])], 1)
        acts = {"input": x}
        reached = {}
        for pop in self.populations:
            previous = None
            for _ in range(max_rounds if isinstance(pop, PLIFPopulation) else 1):
                s = pop(acts, False)
                rate = float(s.mean())
                if not isinstance(pop, PLIFPopulation) or target[0] <= rate <= target[1] or (rate == previous and rate > 0):
                    break  # in range, or limited by its input's activity (more gain changes nothing)
                previous = rate
                gain = 1.5 if rate < target[0] else 0.7
                for g in pop.groups:
                    g.weight.mul_(gain)
                    if g.gain is not None:
                        g.gain.mul_(gain)
            acts[pop.name] = s
            reached[pop.name] = rate
        self.train(was_training)
        return reached

    # -------------------------------------------------------------------------------- quantization
    @property
    def quantized(self) -> bool:
        return bool(self.quantized_flag)

    @property
    def readout_scale(self) -> FrozenScale:
        return FrozenScale(2.0 ** int(self.readout_exponent))

    def readout_integer_weight(self) -> torch.Tensor:
        return quantize_weight(self.readout_scale.scale * self.readout.weight)

    def quantize(self) -> None:
        """Enter quantization-aware mode: fix each population's power-of-two scale (its weight exponent)."""
        for pop in self.populations:
            if isinstance(pop, PLIFPopulation):
                pop.freeze_scale()
        largest = float(self.readout.weight.detach().abs().max())
        self.readout_exponent.fill_(min(math.floor(math.log2(254 / max(largest, 1e-12))), 14))
        self.quantized_flag.fill_(True)

    def chip_graph(self, meta: dict | None = None) -> ChipGraph:
        """The chip part as the typed chip IR (what the converter checks, simulates and writes): PLIF
        populations become CUBA populations (iDecay 4096, learned vDecay, folded weights/biases/thresholds),
        per-channel shift delays per-synapse delay matrices, each input group one :class:`Synapses` edge,
        the coincidence population keeps its fixed wiring, the readout an :class:`Accumulator` (Lava
        ``Sigma``) read by the host."""
        if not self.quantized:
            raise RuntimeError("call quantize() first")
        cfg = self.cfg
        inputs = [ir.HostInput("input", cfg.input_dim, message_bits=cfg.input_bits, levels=self.host.levels,
                            steps_per_frame=cfg.steps_per_frame)]
        pops, syns = [], []

        def edge(source: str, target: str, weight: torch.Tensor, delays) -> Synapses:
            w = weight.long().numpy()
            d = np.broadcast_to(np.asarray(delays, np.int64)[None, :], w.shape).copy()
            return Synapses(f"{source}->{target}", source, target, w, d)

        with torch.no_grad():
            for pop in self.populations:
                if isinstance(pop, CoincidencePopulation):
                    wa, wb = pop.connectivity()
                    pops.append(CubaPopulation(pop.name, pop.size, NO_CURRENT_MEMORY_I_DECAY, MAX_DECAY_REGISTER,
                                               pop.THRESHOLD, np.zeros(pop.size, np.int64), role="coincidence"))
                    syns += [edge(pop.source_a, pop.name, wa, [0] * pop.size_a),
                             edge(pop.source_b, pop.name, wb, [0] * pop.size_b)]
                    continue
                pops.append(CubaPopulation(pop.name, pop.size, NO_CURRENT_MEMORY_I_DECAY, int(pop.v_decay_int()),
                                           pop.integer_threshold(), pop.integer_bias().long().numpy(), role="plif",
                                           scale_exponent=pop.frozen.exponent))
                syns += [edge(g.source, pop.name, _as_matrix(g, pop.integer_weight(g)), g.delays) for g in pop.groups]
            w = self.readout_integer_weight().long().numpy()
            accs = [Accumulator("readout", w.shape[0], self.readout_scale.exponent)]
            syns.append(Synapses(f"{self.readout.source}->readout", self.readout.source, "readout", w,
                                 np.zeros_like(w)))
        return ChipGraph(inputs, pops, accs, syns, flush_steps=self.flush_steps, meta=dict(meta or {}))


def _as_matrix(group: SynapseGroup, w: torch.Tensor) -> torch.Tensor:
    return torch.diag(w) if group.diagonal else w
