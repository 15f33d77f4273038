"""Eye-emotion data (docs/data_eye.md): one dataset form for the SEE data set in its published layout and
for the embedded synthetic near-eye generator; AEDAT4 recordings through ``aedat`` and ``tonic``.

``load_eye_dataset("synthetic-eye" | "see:PATH")`` -> :class:`EyeDataset` (numpy arrays).
"""

from ptsnn.data.eye.baselines import BASELINES, run_baseline
from ptsnn.data.eye.classes import LIGHTINGS, SEE_CLASSES
from ptsnn.data.eye.dataset import CHANNEL_CHOICES, EyeDataset, load_eye_dataset, subject_split
from ptsnn.data.eye.events import events_to_frames, read_aedat4, recording_sequence
from ptsnn.data.eye.see import load_see
from ptsnn.data.eye.synthetic import (
    EyeEmotionProfile,
    SyntheticEyeConfig,
    SyntheticSequence,
    default_profiles,
    generate_dataset,
    render_sequence,
)

__all__ = [
    "BASELINES",
    "CHANNEL_CHOICES",
    "LIGHTINGS",
    "SEE_CLASSES",
    "EyeDataset",
    "EyeEmotionProfile",
    "SyntheticEyeConfig",
    "SyntheticSequence",
    "default_profiles",
    "events_to_frames",
    "generate_dataset",
    "load_eye_dataset",
    "load_see",
    "read_aedat4",
    "recording_sequence",
    "render_sequence",
    "run_baseline",
    "subject_split",
]
