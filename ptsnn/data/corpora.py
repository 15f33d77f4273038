"""Loaders for the published layouts of the SER corpora PTS-SNN reports on, and the ``load_corpus`` registry.

Labels are mapped to shared English names (angry, happy, neutral, sad, boredom, disgust, fear, surprise);
each corpus's classes are in alphabetical order. Folds follow EmoBox (Ma et al., Interspeech 2024) where
EmoBox is speaker-independent; where it is not (EmoDB's released lists, URDU's random 25 % split) a
speaker-independent protocol with the same fold count is used instead. See docs/data.md.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from ptsnn.data.corpus import Corpus, Utterance, leave_one_speaker_out, stable_rank
from ptsnn.data.manifest import load_manifest
from ptsnn import safeio
from ptsnn.errors import InputError

# ---------------------------------------------------------------------------------------------- IEMOCAP
IEMOCAP_LABELS = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}
IEMOCAP_CLASSES = ("angry", "happy", "neutral", "sad")
# "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]"
_IEMOCAP_LINE = re.compile(r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(Ses\d\d[FM]_\S+_([FM])\d+)\s+(\w+)\s+\[")
_IEMOCAP_LAYOUT = "SessionN/dialog/EmoEvaluation/*.txt and SessionN/sentences/wav/<dialog>/<utt>.wav"


def load_iemocap(root: str | os.PathLike[str], *, label_map: Mapping[str, str] = IEMOCAP_LABELS) -> Corpus:
    """IEMOCAP_full_release: 4 classes (excited merged into happy, other labels dropped); fold k tests
    Session k (leave-one-session-out); speaker = session + gender of the utterance (``Ses01F``)."""
    base = _existing_root(root, "IEMOCAP")
    if (base / "IEMOCAP_full_release").is_dir():
        base = base / "IEMOCAP_full_release"
    sessions = sorted((int(d.name[7:]), d) for d in base.iterdir()
                      if d.is_dir() and re.fullmatch(r"Session\d+", d.name))
    if not sessions:
        raise InputError(f"{base}: no IEMOCAP Session1..Session5 folders (expected {_IEMOCAP_LAYOUT})")
    utterances = []
    for number, session in sessions:
        eval_dir = session / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            raise InputError(f"{eval_dir}: missing (expected {_IEMOCAP_LAYOUT})")
        for txt in sorted(p for p in eval_dir.glob("*.txt") if not p.name.startswith(".")):
            for utt_id, gender, code in _iemocap_labels(txt):
                if code not in label_map:
                    continue
                wav = session / "sentences" / "wav" / utt_id.rsplit("_", 1)[0] / f"{utt_id}.wav"
                if not wav.is_file():
                    raise InputError(f"{wav}: missing audio for {utt_id} labelled in {txt.name}")
                utterances.append(Utterance(wav, label_map[code], f"Ses{number:02d}{gender}", utt_id, number))
    return _corpus("iemocap", base, utterances, sorted(set(label_map.values())),
                   "5 folds, leave-one-session-out; validation: one speaker of the next session")


def _iemocap_labels(txt: Path) -> Iterable[tuple[str, str, str]]:
    try:
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{txt}: cannot read ({exc.strerror})") from None
    for line in lines:
        match = _IEMOCAP_LINE.match(line)
        if match:
            yield match.group(1), match.group(2), match.group(3)


# ------------------------------------------------------------------------------------------------ EmoDB
EMODB_LABELS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
# Speakers (Burkhardt et al. 2005): male 03 10 11 12 15, female 08 09 13 14 16. One man and one woman per fold.
EMODB_FOLDS = {"03": 1, "08": 1, "10": 2, "09": 2, "11": 3, "13": 3, "12": 4, "14": 4, "15": 5, "16": 5}
_EMODB_NAME = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])\.wav$")


def load_emodb(root: str | os.PathLike[str]) -> Corpus:
    """Berlin EmoDB ``wav/03a01Fa.wav``: speaker, text, emotion letter, version. 7 classes; 5 folds of one
    male and one female speaker each (speaker-independent)."""
    base = _existing_root(root, "EmoDB")
    wav_dir = base / "wav" if (base / "wav").is_dir() else base
    utterances = []
    for wav in _wav_files(wav_dir):
        match = _EMODB_NAME.match(wav.name)
        if not match:
            raise InputError(f"{wav}: not an EmoDB file name "
                             "(expected e.g. 03a01Fa.wav: speaker, text, emotion, version)")
        speaker, _text, emotion, _version = match.groups()
        if speaker not in EMODB_FOLDS:
            raise InputError(f"{wav}: unknown EmoDB speaker {speaker} (expected one of {sorted(EMODB_FOLDS)})")
        utterances.append(Utterance(wav, EMODB_LABELS[emotion], speaker, wav.stem, EMODB_FOLDS[speaker]))
    if not utterances:
        raise InputError(f"{wav_dir}: no EmoDB wav files (expected <root>/wav/03a01Fa.wav ...)")
    return _corpus("emodb", base, utterances, sorted(EMODB_LABELS.values()),
                   "5 speaker folds (one male + one female speaker each); validation: one speaker of the next fold")


# ------------------------------------------------------------------------------------------------ CASIA
CASIA_SPEAKERS = ("liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang")
CASIA_CLASSES = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def load_casia(root: str | os.PathLike[str]) -> Corpus:
    """CASIA ``<speaker>/<emotion>/<id>.wav``; 6 classes; leave-one-speaker-out over the 4 speakers."""
    base = _existing_root(root, "CASIA")
    utterances = []
    for speaker_dir in _subdirs(base):
        for emotion_dir in _subdirs(speaker_dir):
            label = emotion_dir.name.lower()
            if label not in CASIA_CLASSES:
                raise InputError(f"{emotion_dir}: unknown CASIA emotion folder (expected {', '.join(CASIA_CLASSES)})")
            for wav in _wav_files(emotion_dir):
                utt_id = f"{speaker_dir.name}_{label}_{wav.stem}"
                utterances.append(Utterance(wav, label, speaker_dir.name, utt_id))
    if not utterances:
        raise InputError(f"{base}: no CASIA wav files (expected <speaker>/<emotion>/<id>.wav, "
                         f"speakers {', '.join(CASIA_SPEAKERS)})")
    order = _speaker_order({u.speaker for u in utterances}, CASIA_SPEAKERS)
    return _corpus("casia", base, leave_one_speaker_out(utterances, order), CASIA_CLASSES,
                   f"{len(order)} folds, leave-one-speaker-out; validation: 10 % of training utterances")


# ------------------------------------------------------------------------------------------------ EMOVO
EMOVO_LABELS = {"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear", "rab": "angry",
                "sor": "surprise", "tri": "sad"}
EMOVO_SPEAKERS = ("f1", "f2", "f3", "m1", "m2", "m3")
_EMOVO_NAME = re.compile(r"^([a-z]{3})-([fm]\d)-(\w+)\.wav$", re.IGNORECASE)


def load_emovo(root: str | os.PathLike[str]) -> Corpus:
    """EMOVO ``<f1..m3>/<emo>-<speaker>-<sentence>.wav``; 7 classes; leave-one-speaker-out (6 folds)."""
    base = _existing_root(root, "EMOVO")
    utterances = []
    for speaker_dir in _subdirs(base):
        if not re.fullmatch(r"[fm]\d", speaker_dir.name, re.IGNORECASE):
            continue  # the release also holds e.g. documents/
        for wav in _wav_files(speaker_dir):
            match = _EMOVO_NAME.match(wav.name)
            if not match:
                raise InputError(f"{wav}: not an EMOVO file name (expected <emotion>-<speaker>-<sentence>.wav)")
            code, speaker, _sentence = (g.lower() for g in match.groups())
            if code not in EMOVO_LABELS:
                raise InputError(f"{wav}: unknown EMOVO emotion code {code!r} (expected {', '.join(EMOVO_LABELS)})")
            if speaker != speaker_dir.name.lower():
                raise InputError(f"{wav}: speaker {speaker} in the file name but folder {speaker_dir.name}")
            utterances.append(Utterance(wav, EMOVO_LABELS[code], speaker, wav.stem.lower()))
    if not utterances:
        raise InputError(f"{base}: no EMOVO wav files (expected f1/ f2/ f3/ m1/ m2/ m3/ with dis-f1-b1.wav ...)")
    order = _speaker_order({u.speaker for u in utterances}, EMOVO_SPEAKERS)
    return _corpus("emovo", base, leave_one_speaker_out(utterances, order), sorted(EMOVO_LABELS.values()),
                   f"{len(order)} folds, leave-one-speaker-out; validation: 10 % of training utterances")


# ------------------------------------------------------------------------------------------------- URDU
URDU_CLASSES = ("angry", "happy", "neutral", "sad")
_URDU_NAME = re.compile(r"^(S[MF]\d+)_F\d+_([AHNS])\d+\.wav$", re.IGNORECASE)
_URDU_CODES = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
URDU_TEST_SHARE = 0.25  # EmoBox's single fold tests on 25 % of the data


def load_urdu(root: str | os.PathLike[str]) -> Corpus:
    """URDU ``<Angry|Happy|Neutral|Sad>/SM1_F1_A01.wav`` (speaker, file number, emotion + number); one fold
    whose test set is about 25 % of the utterances, chosen by speaker (speaker-independent)."""
    base = _existing_root(root, "URDU")
    utterances = []
    for emotion_dir in _subdirs(base):
        label = emotion_dir.name.lower()
        if label not in URDU_CLASSES:
            continue  # e.g. a README folder next to the four class folders
        for wav in _wav_files(emotion_dir):
            match = _URDU_NAME.match(wav.name)
            if not match:
                raise InputError(f"{wav}: not a URDU file name (expected e.g. SM1_F1_A01.wav)")
            speaker, code = match.group(1).upper(), match.group(2).upper()
            if _URDU_CODES[code] != label:
                raise InputError(f"{wav}: emotion code {code} in the file name contradicts folder {emotion_dir.name}")
            utterances.append(Utterance(wav, label, speaker, wav.stem.upper()))
    if not utterances:
        raise InputError(f"{base}: no URDU wav files (expected Angry/ Happy/ Neutral/ Sad/ with SM1_F1_A01.wav ...)")
    test_speakers = _test_speakers_by_share(utterances, URDU_TEST_SHARE)
    utterances = [Utterance(u.path, u.label, u.speaker, u.utt_id, 1 if u.speaker in test_speakers else None)
                  for u in utterances]
    return _corpus("urdu", base, utterances, URDU_CLASSES,
                   "1 fold: test = speakers holding ~25 % of utterances; validation: one training speaker")


def _test_speakers_by_share(utterances: Sequence[Utterance], share: float) -> set[str]:
    """Speakers in a fixed pseudo-random order, taken while the test set stays within ``share``."""
    counts = Counter(u.speaker for u in utterances)
    budget = share * len(utterances)
    chosen: set[str] = set()
    total = 0
    for speaker in sorted(counts, key=stable_rank):
        if total + counts[speaker] <= budget:
            chosen.add(speaker)
            total += counts[speaker]
    if not chosen or len(chosen) == len(counts):  # tiny corpora: still one test speaker, one training speaker
        chosen = {min(counts, key=lambda s: (counts[s], stable_rank(s)))}
    return chosen


# -------------------------------------------------------------------------------------------- synthetic
def load_synthetic(root: str | os.PathLike[str]) -> Corpus:
    """The generated corpus under ``root``; generated with the default config if ``root`` is missing/empty."""
    from ptsnn.data import synthetic  # local: the generator is only needed here

    base = Path(root)
    manifest = base / synthetic.MANIFEST_NAME
    if not manifest.is_file():
        if base.exists() and (not base.is_dir() or any(base.iterdir())):
            raise InputError(f"{base}: not a synthetic corpus (no {synthetic.MANIFEST_NAME}) and not empty; "
                             "give a new or empty folder to generate one")
        synthetic.write_corpus(synthetic.SyntheticCorpusConfig(), base)
    classes = None
    info = base / synthetic.INFO_NAME
    if info.is_file():
        doc = safeio.parse_json(safeio.read_text(info, "corpus info"), f"{info} (delete the folder to regenerate)")
        classes = doc.get("classes") if isinstance(doc, dict) else None
        if not (classes is None or (isinstance(classes, list) and all(isinstance(c, str) for c in classes))):
            raise InputError(f"{info}: 'classes' must be a list of label names (delete the folder to regenerate)")
    corpus = load_manifest(manifest, classes=classes, name="synthetic")
    return Corpus("synthetic", base, corpus.utterances, corpus.classes,
                  "fixed split by speaker (6/1/1 for 8 speakers); folds: leave-one-speaker-out")


# ------------------------------------------------------------------------------------------------ shared
def _existing_root(root: str | os.PathLike[str], what: str) -> Path:
    base = Path(root).expanduser()
    if not base.exists():
        raise InputError(f"{base}: {what} root folder not found")
    if not base.is_dir():
        raise InputError(f"{base}: {what} root must be a folder")
    return base


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def _wav_files(folder: Path) -> list[Path]:
    # skip macOS "._x.wav" resource forks that ship inside several of these archives
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() == ".wav" and not p.name.startswith(".") and p.is_file())


def _speaker_order(present: set[str], known: Sequence[str]) -> list[str]:
    """Known speakers in their published order (folds 1..N), any others after them alphabetically."""
    lower = {s.lower(): s for s in present}
    ordered = [lower[k.lower()] for k in known if k.lower() in lower]
    return ordered + sorted(present - set(ordered))


def _corpus(name: str, root: Path, utterances: Sequence[Utterance], classes: Sequence[str], protocol: str) -> Corpus:
    ordered = sorted(utterances, key=lambda u: u.utt_id)
    return Corpus(name=name, root=root, utterances=tuple(ordered), classes=tuple(classes), protocol=protocol)


def _load_manifest(root: str | os.PathLike[str]) -> Corpus:
    path = Path(root)
    if path.is_dir():
        found = [path / n for n in ("manifest.csv", "manifest.json", "manifest.jsonl") if (path / n).is_file()]
        if not found:
            raise InputError(f"{path}: no manifest.csv, manifest.json or manifest.jsonl in this folder")
        path = found[0]
    return load_manifest(path)


LOADERS: dict[str, Callable[[str | os.PathLike[str]], Corpus]] = {
    "iemocap": load_iemocap,
    "emodb": load_emodb,
    "casia": load_casia,
    "emovo": load_emovo,
    "urdu": load_urdu,
    "manifest": _load_manifest,
    "synthetic": load_synthetic,
}


def load_corpus(name: str, root: str | os.PathLike[str]) -> Corpus:
    """Load corpus ``name`` (iemocap, emodb, casia, emovo, urdu, manifest, synthetic) from ``root``.

    For ``manifest``, ``root`` is the manifest file or a folder holding ``manifest.csv``/``.json``/``.jsonl``.
    """
    key = name.strip().lower()
    if key not in LOADERS:
        raise InputError(f"unknown corpus {name!r} (known: {', '.join(LOADERS)})")
    return LOADERS[key](root)
