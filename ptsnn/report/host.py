"""The host part's arithmetic (what ``host.onnx`` computes) and its 45 nm CMOS energy, reported apart from the
chip so that an SNN-only figure is never mistaken for the system's.

Per frame, counted from the bundle's front-end spec (``manifest["frontend"]``) and the feature size:

* fbank (``frontend/fbank.py``): framing + DC removal + pre-emphasis + window + real DFT folded into one
  ``conv1d`` kernel ``[2 (n_fft/2 + 1), win_length]`` (dense MACs); power ``re*re + im*im`` (1 mult + 1 MAC per
  bin); mel matmul ``[n_fft/2 + 1, n_mels]`` (dense, as onnxruntime computes it); clamp + log per mel;
* LayerNorm over F features (sum, centre, variance, scale, affine), ``tanh(xi x)``, ``round(levels x)``;
* per utterance: the readout division (one divide per class).

Energy under cmos45nm: MACs x ``energy.mac_pj``, adds x ``energy.ac_pj``, multiplies (and divides) x
``energy.mac_pj`` (the profile has no separate multiply figure: an upper bound). ``other`` operations (log,
tanh, rsqrt, round, clamp) have no figure in the profile: counted, not costed.
"""

from __future__ import annotations

import math

from ptsnn.report.energy import field_use

OPS = ("macs", "adds", "mults", "other")


def _stage(stage: str, macs: int = 0, adds: int = 0, mults: int = 0, other: int = 0, note: str = "") -> dict:
    return dict(stage=stage, macs=int(macs), adds=int(adds), mults=int(mults), other=int(other), note=note)


def host_stages(frontend_spec: dict | None, feature_dim: int) -> tuple[list[dict], bool, str]:
    """``(stages per frame, front end counted?, note)``."""
    spec = dict(frontend_spec or {})
    if not spec:  # a bundle converted from NIR: the chip input is given directly, nothing runs on the host
        return [], False, "no host part (converted from a NIR graph: the chip input is given directly)"
    if spec.get("kind") == "ttfs_clip":
        return ttfs_host_stages(spec, feature_dim), True, ("TTFS host part, once per inference (one clip): clip "
                                                          "encoding, input quantization; the timing pattern is fixed")
    stages = []
    counted = spec.get("kind") == "fbank"
    if counted:
        from ptsnn.frontend.fbank import FbankFrontend, mel_filterbank

        fe = FbankFrontend.from_spec(spec)
        n_fft, n_mels = int(fe.spec["n_fft"]), int(fe.spec["n_mels"])
        n_freq = n_fft // 2 + 1
        mel_nnz = int((mel_filterbank(n_mels, n_fft, fe.sample_rate, fe.spec["f_min"], fe.spec["f_max"]) != 0).sum())
        stages += [
            _stage("fbank: framing, window, DFT (conv1d)", macs=2 * n_freq * fe.win_length,
                   note=f"kernel [{2 * n_freq}, {fe.win_length}], stride {fe.hop_length}"),
            _stage("fbank: power spectrum", macs=n_freq, mults=n_freq, note=f"{n_freq} bins: re*re + im*im"),
            _stage("fbank: mel filterbank (matmul)", macs=n_freq * n_mels,
                   note=f"dense [{n_freq}, {n_mels}] as host.onnx computes it ({mel_nnz} non-zero entries)"),
            _stage("fbank: floor and log", other=2 * n_mels),
        ]
        if fe.spec.get("normalize"):
            f = n_mels
            stages.append(_stage("fbank: per-utterance mean/variance normalisation", adds=2 * f, macs=f, mults=f))
        note = "host.onnx starts from the waveform: the fbank front end is included"
    else:
        kind = spec.get("kind") or "unknown"
        if kind in ("hf", "torchaudio"):  # exported into host.onnx (convert/host_part.py)
            note = (f"front end '{kind}' (SSL model) runs in host.onnx before the payload; its transformer "
                    "arithmetic is not counted here")
        else:
            note = (f"front end '{kind}' runs before host.onnx (features are given to it): its cost is not "
                    "counted here")
    f = int(feature_dim)
    stages += [
        _stage("LayerNorm", adds=2 * f, macs=2 * f, mults=f + 2, other=1,
               note="sum, centre, variance (MAC), scale by rsqrt, affine (MAC); two divides by F"),
        _stage("tanh(xi x)", mults=f, other=f),
        _stage("quantize: round(levels x)", mults=f, other=f),
    ]
    return stages, counted, note


def ttfs_host_stages(spec: dict, inputs: int) -> list[dict]:
    """Per clip: the ON/OFF differences of the sampled frames (one subtraction and two clamps per pixel and
    difference; ``stack`` takes the frames as they are), then ``q0 = floor(x K / input_max + 1/2)`` clipped."""
    pixels = int(spec.get("frame_channels", 1)) * int(spec.get("frame_height", 1)) * int(spec.get("frame_width", 1))
    diffs = max(int(spec.get("frames_per_clip", 1)) - 1, 0)
    stages = []
    if spec.get("encoding") == "onoff" and diffs:
        stages.append(_stage("clip encoding: ON/OFF frame differences", adds=pixels * diffs, other=2 * pixels * diffs,
                             note=f"{diffs} difference(s) of {pixels} values, each split into relu(d) and relu(-d)"))
    stages.append(_stage("quantize: clip, q0 = floor(x K / input_max + 1/2)", mults=inputs, adds=inputs,
                         other=2 * inputs, note=f"{inputs} inputs; clamp and floor not costed"))
    stages.append(_stage("timing spike pattern", note="fixed per architecture: no arithmetic"))
    return stages


def host_report(frontend_spec: dict | None, feature_dim: int, steps_per_frame: int, payload_steps: list[int],
                classes: int, cmos_profile) -> dict:
    """Host arithmetic and energy per utterance (mean over the utterances' frame counts)."""
    stages, counted, note = host_stages(frontend_spec, feature_dim)
    n = len(payload_steps)
    frames = [math.ceil(s / max(int(steps_per_frame), 1)) for s in payload_steps]
    mean_frames = sum(frames) / n if n else 0.0
    per_frame = {k: sum(s[k] for s in stages) for k in OPS}
    per_utt = {k: per_frame[k] * mean_frames for k in OPS}
    per_utt["mults"] += classes  # the readout division, once per utterance
    mac, ac = field_use(cmos_profile, "energy.mac_pj"), field_use(cmos_profile, "energy.ac_pj")

    def energy(ops: dict) -> float:
        return (ops["macs"] + ops["mults"]) * mac["value"] + ops["adds"] * ac["value"]

    for s in stages:
        s["energy_pj_per_frame"] = energy(s)
    readout = _stage("readout division", mults=classes, note="per utterance, not per frame")
    readout["energy_pj_per_utterance"] = energy(readout)
    total = energy(per_utt)
    return dict(
        frontend=(frontend_spec or {}).get("kind"), frontend_counted=counted, note=note,
        stages=stages, per_utterance_stages=[readout], frames_per_utterance=mean_frames,
        ops_per_frame=per_frame, ops_per_utterance=per_utt,
        profile=cmos_profile.name,
        formula="(MACs + multiplies) x energy.mac_pj + adds x energy.ac_pj; other ops not costed",
        fields=[mac, ac], uses_proxy=mac["proxy"] or ac["proxy"],
        per_utterance_pj=total, per_utterance_uj=total / 1e6)
