"""Backends of the chip part: a registry name -> backend, each with one interface
``run(bundle, payloads) -> ChipRun``.

A backend takes the host's graded payloads ``[steps_i, F]`` (one per utterance), streams each through the
bundle's chip graph followed by ``bundle.flush_steps`` empty steps, and returns one
:class:`ptsnn.chip.simulator.ChipRun` for the batch: spikes ``[B, T_max, N]`` and the accumulators' running
sums ``[B, T_max, N]``. Only each utterance's window ``len(payload) + flush_steps`` (:func:`chip_steps`)
means anything; consumers crop to it (``ChipRun.readout(name, steps)``). Adding a backend is one class and one :func:`register` call; ``ptsnn run --backend``
lists whatever is registered. Heavy imports (Lava) happen inside ``run`` so the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from ptsnn.chip.simulator import ChipRun
from ptsnn.errors import InputError


class Backend(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]  # one line for --help

    def check(self) -> None:
        """Raise a one-line PtsnnError now if this backend cannot run here (before any input is read)."""

    def run(self, bundle, payloads: list[np.ndarray]) -> ChipRun: ...


_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` (constructible with keyword options only) available by ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    return list(_REGISTRY)


def descriptions() -> dict[str, str]:
    return {n: c.description for n, c in _REGISTRY.items()}


def get_backend(name: str, **options) -> Backend:
    """The backend called ``name``; ``options`` it does not take (e.g. a Lava timeout for ``fast``) are ignored."""
    if name not in _REGISTRY:
        raise InputError(f"--backend {name!r}: choose {', '.join(_REGISTRY)}")
    cls = _REGISTRY[name]
    fields = getattr(cls, "__dataclass_fields__", {})
    return cls(**{k: v for k, v in options.items() if k in fields})


def payload_steps(payload) -> int:
    """Steps of one sample's payload: ``[steps, F]`` (the first host input) or ``{input: [steps, size]}``
    (graphs with several host inputs, e.g. a TTFS graph's input and timing spikes)."""
    if isinstance(payload, dict):
        return max(len(a) for a in payload.values())
    return len(payload)


def graph_of(bundle):
    """The chip graph of ``bundle`` (a ``Bundle``, or a bare ``ChipGraph`` for in-memory graphs)."""
    return getattr(bundle, "graph", bundle)


def chip_steps(bundle, payloads: list) -> np.ndarray:
    """Each utterance's chip window: its payload steps plus the graph's flush."""
    flush = int(graph_of(bundle).flush_steps)
    return np.asarray([payload_steps(p) + flush for p in payloads], np.int64)


def pad_payloads(bundle, payloads: list):
    """``[B, T_max, F]`` int64 (``{input: [B, T_max, size]}`` for dict payloads), each payload followed by
    zeros (its flush and the batch's padding)."""
    from ptsnn.batching import pad_batch

    length = int(chip_steps(bundle, payloads).max())
    if payloads and isinstance(payloads[0], dict):
        return {name: pad_batch([p[name] for p in payloads], length=length, dtype=np.int64)[0]
                for name in payloads[0]}
    batch, _ = pad_batch(payloads, length=length, dtype=np.int64)
    return batch


@register
@dataclass
class FastBackend:
    """ptsnn's bit-exact numpy simulator (``ptsnn.chip.simulator``), the whole batch at once.
    ``record_voltage``: also return each CUBA population's voltages (the report's histograms)."""

    name: ClassVar[str] = "fast"
    description: ClassVar[str] = "ptsnn's bit-exact numpy simulator (batched, seconds for many files)"
    record_voltage: bool = False  # also return each population's voltage per step (reports, TTFS readout)

    def check(self) -> None:
        pass

    def run(self, bundle, payloads: list[np.ndarray]) -> ChipRun:
        from ptsnn.chip.simulator import simulate

        return simulate(graph_of(bundle), pad_payloads(bundle, payloads), record_voltage=self.record_voltage)


@register
@dataclass
class LavaBackend:
    """Lava's CPU simulation (``Loihi2SimCfg(select_tag='fixed_pt')``) in a child process group."""

    name: ClassVar[str] = "lava"
    description: ClassVar[str] = "Lava's CPU simulation, fixed_pt (slow: seconds per utterance)"
    timeout_s: float = 600.0
    log_dir: object = None

    def check(self) -> None:
        pass  # Lava's own import problems surface as a LavaRunError with its log

    def run(self, bundle, payloads: list[np.ndarray]) -> ChipRun:
        from ptsnn.deploy import lava_runner

        if not hasattr(bundle, "path"):
            raise InputError("--backend lava runs a bundle folder, not an in-memory chip graph")
        steps = chip_steps(bundle, payloads)
        outs = lava_runner.run_bundle(bundle.path, payloads, steps.tolist(), timeout_s=self.timeout_s,
                                      log_dir=self.log_dir)
        t_max = int(steps.max())
        g = bundle.graph  # bool spikes, int32 payloads for graded (sigma-delta) populations, as ChipRun says
        spikes = {p.name: np.zeros((len(payloads), t_max, p.size), np.int32 if g.message_bits(p.name) else bool)
                  for p in g.populations}
        accs = {a.name: np.zeros((len(payloads), t_max, a.size), np.int64) for a in bundle.graph.accumulators}
        for i, (out, s) in enumerate(zip(outs, steps)):  # Lava's probes are [size, steps]
            for name, arr in spikes.items():
                arr[i, :s] = out[name].T[:s]
            for name, arr in accs.items():
                arr[i, :s] = out[name].T[:s]
        return ChipRun(spikes, accs)


@register
@dataclass
class Loihi2Backend:
    """Loihi 2 hardware: ptsnn does not drive remote systems; the bundle's ``run_loihi2.py`` does."""

    name: ClassVar[str] = "loihi2"
    description: ClassVar[str] = "Loihi 2 hardware (needs Intel's lava-loihi; use the bundle's run_loihi2.py)"

    def check(self) -> None:
        from ptsnn.convert.loihi2_script import require_lava_loihi

        require_lava_loihi()  # a clear one-line error without Intel's lava-loihi

    def run(self, bundle, payloads: list[np.ndarray]) -> ChipRun:
        self.check()
        raise InputError("--backend loihi2: run the bundle's run_loihi2.py on the Loihi 2 host "
                         "(python run_loihi2.py PAYLOAD.npy); ptsnn does not drive remote systems itself")
