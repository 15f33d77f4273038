"""Speech-emotion data: audio I/O with a strict bad-audio policy, corpus loaders with their standard
protocols, generic manifests, and the embedded synthetic acted-emotion corpus (docs/data.md). Eye-emotion
data (SEE, the synthetic near-eye set, AEDAT4 recordings) is the subpackage ``ptsnn.data.eye``
(docs/data_eye.md).

The names below are imported on first use (PEP 562), so that ``ptsnn.data.audio`` -- what ``ptsnn run``
needs -- does not pull in the corpus loaders and the eye data sets."""

from importlib import import_module

_WHERE = {
    "ptsnn.data.audio": ("check_waveform", "load_audio", "resample", "save_audio"),
    "ptsnn.data.corpora": ("LOADERS", "load_casia", "load_corpus", "load_emodb", "load_emovo", "load_iemocap",
                           "load_synthetic", "load_urdu"),
    "ptsnn.data.corpus": ("SPLITS", "Corpus", "Utterance"),
    "ptsnn.data.eye": ("EyeDataset", "load_eye_dataset"),
    "ptsnn.data.manifest": ("load_manifest", "write_manifest"),
    "ptsnn.data.synthetic": ("EmotionProfile", "Gauss", "SyntheticCorpusConfig", "SyntheticRecord",
                             "default_profiles", "generate_utterance", "iter_corpus", "write_corpus"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_MODULE_OF])


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
