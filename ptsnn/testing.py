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
