"""Two reference classifiers that say how hard an eye data set is, and *what kind* of hard.

* **frame-mean**: logistic regression on the time-averaged intensity frame of each sequence (every pixel a
  feature). It sees appearance only; if it does well, the classes can be told apart without temporal cues.
* **temporal**: logistic regression on simple temporal features of the same intensity frames: the
  row and column intensity profiles (the lid and brow height, the gaze position) *relative to the sequence's
  own mean*, at a few time bins; the mean absolute frame difference per row and per column (where things
  move); and quantiles over time of the motion energy in three horizontal bands (how motion is spread in
  time: one burst, many saccades, a slow drift). It has no access to the mean image.

Both standardise features on the training set and use scikit-learn's LogisticRegression (a library of the
field; nothing here is tuned per data set). docs/data_eye.md reports their numbers on the synthetic set.
"""

from __future__ import annotations

import numpy as np

from ptsnn.data.eye.dataset import EyeDataset

BASELINES = ("frame-mean", "temporal")


def _intensity(ds: EyeDataset) -> np.ndarray:
    """[N, T, H, W] of the intensity channel (or of all channels summed when there is none)."""
    if "frame" in ds.channels:
        return ds.sequences[:, :, ds.channels.index("frame")].astype(np.float64)
    return ds.sequences.sum(axis=2, dtype=np.float64)


def frame_mean_features(ds: EyeDataset) -> np.ndarray:
    x = _intensity(ds)
    return x.mean(axis=1).reshape(len(ds), -1)


def temporal_features(ds: EyeDataset, time_bins: int = 4) -> np.ndarray:
    x = _intensity(ds)
    n, t = x.shape[:2]
    rows, cols = x.mean(axis=3), x.mean(axis=2)  # [N, T, H], [N, T, W]
    rows = rows - rows.mean(axis=1, keepdims=True)  # relative to the sequence's own mean: no appearance
    cols = cols - cols.mean(axis=1, keepdims=True)
    edges = np.linspace(0, t, min(time_bins, t) + 1).astype(int)
    binned = [np.stack([p[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1) for p in (rows, cols)]
    motion = np.abs(np.diff(x, axis=1)) if t > 1 else np.zeros_like(x)
    energy = [motion.mean(axis=(1, 3)), motion.mean(axis=(1, 2))]  # [N, H], [N, W]: where things move
    # How motion is spread in time, whatever the onset: quantiles of the per-frame motion energy of the
    # top, middle and bottom thirds of the image (one burst, many saccades, or a slow drift).
    bands = np.array_split(motion, 3, axis=2)
    spread = [np.quantile(band.mean(axis=(2, 3)), [0.25, 0.5, 0.75, 0.9, 1.0], axis=1).T for band in bands]
    return np.concatenate([b.reshape(n, -1) for b in binned] + energy + spread, axis=1)


def run_baseline(kind: str, train: EyeDataset, test: EyeDataset, *, c: float = 0.01) -> np.ndarray:
    """Fit one baseline on ``train``; predicted class indices of ``test``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = {"frame-mean": frame_mean_features, "temporal": temporal_features}[kind]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(features(train), train.labels)
    return model.predict(features(test)).astype(np.int64)
