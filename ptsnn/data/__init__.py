"""Speech-emotion data: audio I/O with a strict bad-audio policy, corpus loaders with their standard
protocols, generic manifests, and the embedded synthetic acted-emotion corpus (docs/data.md). Eye-emotion
data (SEE, the synthetic near-eye set, AEDAT4 recordings) is the subpackage ``ptsnn.data.eye``
(docs/data_eye.md)."""

from ptsnn.data.audio import check_waveform, load_audio, resample, save_audio
from ptsnn.data.corpora import (
    LOADERS,
    load_casia,
    load_corpus,
    load_emodb,
    load_emovo,
    load_iemocap,
    load_synthetic,
    load_urdu,
)
from ptsnn.data.corpus import SPLITS, Corpus, Utterance
from ptsnn.data.eye import EyeDataset, load_eye_dataset
from ptsnn.data.manifest import load_manifest, write_manifest
from ptsnn.data.synthetic import (
    EmotionProfile,
    Gauss,
    SyntheticCorpusConfig,
    SyntheticRecord,
    default_profiles,
    generate_utterance,
    iter_corpus,
    write_corpus,
)

__all__ = [
    "LOADERS",
    "SPLITS",
    "Corpus",
    "EmotionProfile",
    "EyeDataset",
    "Gauss",
    "SyntheticCorpusConfig",
    "SyntheticRecord",
    "Utterance",
    "check_waveform",
    "default_profiles",
    "generate_utterance",
    "iter_corpus",
    "load_audio",
    "load_casia",
    "load_corpus",
    "load_emodb",
    "load_emovo",
    "load_eye_dataset",
    "load_iemocap",
    "load_manifest",
    "load_synthetic",
    "load_urdu",
    "resample",
    "save_audio",
    "write_corpus",
    "write_manifest",
]
