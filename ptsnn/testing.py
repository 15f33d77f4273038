"""Small, reproducible artefacts for tests and benchmarks (no training, no downloads).

``synthetic_bundle`` makes what several tests and ``benchmarks/bundle_fast_vs_lava.py`` need: a PTS-SNN on the
fbank front end, weights scaled by ``data_init`` on a few synthetic utterances (so every layer is active), saved
as a checkpoint and converted for loihi2. It is untrained: useful for exactness and speed, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import torch


def synthetic_bundle(root: str | Path, overrides: list[str] | tuple[str, ...] = (), speakers=(0, 1),
                     max_samples: int | None = None, emit=("netx", "onnx"), seed: int = 0) -> Path:
    """Write ``root/m.pt`` and convert it to ``root/bundle``; returns the bundle folder."""
    from ptsnn.batching import pad_batch
    from ptsnn.convert.bundle import convert_checkpoint
    from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance
    from ptsnn.frontend import build_frontend
    from ptsnn.hw_profiles import load_profile
    from ptsnn.train.checkpoint import save_checkpoint
    from ptsnn.train.config import load_config
    from ptsnn.train.model import PTSSNN

    root = Path(root)
    cfg = load_config("small", list(overrides))
    fe = build_frontend(cfg.frontend)
    sc = SyntheticCorpusConfig()
    feats = [fe(generate_utterance(sc, s, c, 0)[:max_samples]) for s in speakers for c in sc.classes]
    x, lengths = (torch.as_tensor(a) for a in pad_batch([f.numpy() for f in feats]))
    torch.manual_seed(seed)
    model = PTSSNN(cfg.model)
    model.data_init(x, lengths)
    save_checkpoint(root / "m.pt", model, cfg, {c: i for i, c in enumerate(sc.classes)}, fe.spec)
    convert_checkpoint(root / "m.pt", load_profile("loihi2"), root / "bundle", emit=tuple(emit))
    return root / "bundle"


def random_ttfs(seed: int = 0, batch: int = 6, **overrides):
    """A random TTFS network (float64 ReLU twin), random inputs in [0, 1] and windows calibrated on them.

    The architecture varies with ``seed`` (conv with max or average pooling, dense layers); ``overrides``
    replace TTFSConfig fields. Returns ``(net, x, windows)``; untrained, for exactness tests."""
    from ptsnn.train.ttfs import TTFSNet, calibrate_windows
    from ptsnn.train.ttfs_config import ConvSpec, TTFSConfig

    gen = torch.Generator().manual_seed(seed)
    pools = [("max", "avg"), ("avg", None), (None, "max"), ("max", None)][seed % 4]
    fields = dict(frame_channels=1 + seed % 2, frame_size=(8, 8), frames_per_clip=2,
                  conv=[ConvSpec(3 + seed % 3, kernel=3, stride=2 if seed % 4 == 2 else 1, padding=1, pool=pools[0]),
                        ConvSpec(4, kernel=3, padding=1 - seed % 2, pool=pools[1])],
                  dense=[9] if seed % 3 else [7, 5], num_classes=3, steps_per_window=8)
    fields.update(overrides)
    torch.manual_seed(seed)
    net = TTFSNet(TTFSConfig(**fields)).double()
    x = torch.rand((batch, *net.cfg.input_shape), generator=gen, dtype=torch.float64)
    return net, x, calibrate_windows(net, x)
