"""Corpus loaders on small fake trees in each published layout, the manifest loader, and Corpus.split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ptsnn.data import Corpus, Utterance, load_corpus, load_manifest
from ptsnn.data.corpora import EMODB_FOLDS, load_casia, load_emodb, load_emovo, load_iemocap, load_urdu
from ptsnn.errors import InputError

SR = 16000
_COUNTER = iter(range(1_000_000))


def wav(path: Path) -> Path:
    """A tiny distinct recording (0.15 s of noise), so any mix-up of files would show."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(next(_COUNTER))
    sf.write(str(path), (0.1 * rng.standard_normal(int(0.15 * SR))).astype(np.float32), SR, subtype="PCM_16")
    return path


def speakers_disjoint(*parts: list[Utterance]) -> bool:
    sets = [{u.speaker for u in part} for part in parts]
    return all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1:])


def one_line_error(match: str, call) -> str:
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


# ---------------------------------------------------------------------------------------------- IEMOCAP
def make_iemocap(root: Path, sessions=(1, 2, 3, 4, 5)) -> dict[str, tuple[str, str]]:
    """Each session: an improvised and a scripted dialog; returns utt_id -> (label, speaker) expected."""
    expected = {}
    for s in sessions:
        ses = root / "IEMOCAP_full_release" / f"Session{s}"
        rows = [  # (dialog, utterance, code)
            (f"Ses0{s}F_impro01", f"Ses0{s}F_impro01_F000", "neu"),
            (f"Ses0{s}F_impro01", f"Ses0{s}F_impro01_M000", "ang"),
            (f"Ses0{s}F_impro01", f"Ses0{s}F_impro01_F001", "fru"),  # dropped
            (f"Ses0{s}F_impro01", f"Ses0{s}F_impro01_M001", "xxx"),  # dropped (no agreement)
            (f"Ses0{s}M_script01_1", f"Ses0{s}M_script01_1_F000", "exc"),  # merged into happy
            (f"Ses0{s}M_script01_1", f"Ses0{s}M_script01_1_M000", "sad"),
            (f"Ses0{s}M_script01_1", f"Ses0{s}M_script01_1_M001", "hap"),
        ]
        names = {"neu": "neutral", "ang": "angry", "exc": "happy", "hap": "happy", "sad": "sad"}
        by_dialog: dict[str, list[str]] = {}
        for dialog, utt, code in rows:
            wav(ses / "sentences" / "wav" / dialog / f"{utt}.wav")
            by_dialog.setdefault(dialog, []).append(
                f"[{6.29 + len(by_dialog.get(dialog, [])):.4f} - 8.2357]\t{utt}\t{code}\t[2.5000, 2.5000, 2.5000]")
            if code in names:
                expected[utt] = (names[code], f"Ses0{s}{utt.rsplit('_', 1)[1][0]}")
        eval_dir = ses / "dialog" / "EmoEvaluation"
        eval_dir.mkdir(parents=True)
        (eval_dir / "Categorical").mkdir()  # sub-folders of the release must be ignored
        for dialog, lines in by_dialog.items():
            body = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for line in lines:
                body += [line, "C-E1:\tNeutral state;\t()", "A-E1:\tval 3; act 2; dom  2;\t()", ""]
            (eval_dir / f"{dialog}.txt").write_text("\n".join(body) + "\n")
        (eval_dir / "._Ses0x.txt").write_text("mac resource fork")
    return expected


def test_iemocap_labels_speakers_and_session_folds(tmp_path):
    expected = make_iemocap(tmp_path)
    corpus = load_corpus("iemocap", tmp_path)  # finds IEMOCAP_full_release/ under the root
    assert corpus.classes == ("angry", "happy", "neutral", "sad")
    assert corpus.label_map == {"angry": 0, "happy": 1, "neutral": 2, "sad": 3}
    assert {u.utt_id: (u.label, u.speaker) for u in corpus.utterances} == expected
    assert len(corpus) == 25 and corpus.speakers == tuple(f"Ses0{s}{g}" for s in range(1, 6) for g in "FM")
    assert corpus.folds() == [1, 2, 3, 4, 5]
    for u in corpus.utterances:
        assert u.fold == int(u.utt_id[3:5]) and u.path.name == f"{u.utt_id}.wav" and u.path.is_file()
    train, valid, test = corpus.split(1)
    assert {u.speaker for u in test} == {"Ses01F", "Ses01M"}
    assert {u.speaker for u in valid} == {"Ses02F"}  # one speaker of the next session
    assert {u.speaker for u in train} == set(corpus.speakers) - {"Ses01F", "Ses01M", "Ses02F"}
    assert speakers_disjoint(train, valid, test) and len(train) + len(valid) + len(test) == len(corpus)
    valid_speakers = {next(iter({u.speaker for u in corpus.split(k)[1]})) for k in corpus.folds()}
    assert len(valid_speakers) == 5  # each fold validates on a different speaker


def test_iemocap_missing_audio_and_layout_errors(tmp_path):
    make_iemocap(tmp_path, sessions=(1,))
    base = tmp_path / "IEMOCAP_full_release"
    gone = base / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav"
    gone.unlink()
    assert str(gone) in one_line_error("missing audio", lambda: load_iemocap(base))
    one_line_error("root folder not found", lambda: load_iemocap(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    one_line_error("no IEMOCAP Session1..Session5", lambda: load_iemocap(tmp_path / "empty"))
    (tmp_path / "bad" / "Session1").mkdir(parents=True)
    one_line_error("EmoEvaluation: missing", lambda: load_iemocap(tmp_path / "bad"))


# ------------------------------------------------------------------------------------------------ EmoDB
def test_emodb_labels_and_gender_balanced_speaker_folds(tmp_path):
    letters = "WLEAFTN"
    names = []
    for i, speaker in enumerate(sorted(EMODB_FOLDS)):
        for k in range(2):
            names.append(f"{speaker}a0{k + 1}{letters[(i + k) % 7]}{'ab'[k]}.wav")
    for name in names:
        wav(tmp_path / "emodb" / "wav" / name)
    (tmp_path / "emodb" / "lab").mkdir()  # other release folders are ignored
    corpus = load_corpus("emodb", tmp_path / "emodb")
    assert corpus.classes == ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")
    by_id = {u.utt_id: u for u in corpus.utterances}
    assert by_id["03a01Wa"].label == "angry" and by_id["03a02Lb"].label == "boredom"
    assert by_id["08a01La"].label == "boredom" and by_id["09a01Ea"].label == "disgust"
    assert by_id["10a01Aa"].label == "fear" and by_id["11a01Fa"].label == "happy"
    assert by_id["12a01Ta"].label == "sad" and by_id["13a01Na"].label == "neutral"
    assert corpus.folds() == [1, 2, 3, 4, 5]
    test_speakers = [sorted({u.speaker for u in corpus.split(k)[2]}) for k in corpus.folds()]
    assert test_speakers == [["03", "08"], ["09", "10"], ["11", "13"], ["12", "14"], ["15", "16"]]
    train, valid, test = corpus.split(2)
    assert len({u.speaker for u in valid}) == 1 and speakers_disjoint(train, valid, test)


def test_emodb_rejects_foreign_names(tmp_path):
    wav(tmp_path / "wav" / "03a01Fa.wav")
    wav(tmp_path / "wav" / "hello.wav")
    one_line_error("not an EmoDB file name", lambda: load_emodb(tmp_path))
    (tmp_path / "wav" / "hello.wav").unlink()
    wav(tmp_path / "wav" / "99a01Fa.wav")
    one_line_error("unknown EmoDB speaker 99", lambda: load_emodb(tmp_path))
    (tmp_path / "none" / "wav").mkdir(parents=True)
    one_line_error("no EmoDB wav files", lambda: load_emodb(tmp_path / "none"))


# ------------------------------------------------------------------------------------------------ CASIA
CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def test_casia_leave_one_speaker_out(tmp_path):
    for speaker in ("ZhaoZuoxiang", "liuchanhg", "wangzhe", "zhaoquanyin"):
        for emotion in CASIA_EMOTIONS:
            for i in (201, 202):
                wav(tmp_path / speaker / emotion / f"{i}.wav")
    (tmp_path / "readme.txt").write_text("not a speaker")
    corpus = load_corpus("casia", tmp_path)
    assert corpus.classes == CASIA_EMOTIONS and len(corpus) == 48
    order = [sorted({u.speaker for u in corpus.split(k)[2]}) for k in corpus.folds()]
    assert order == [["liuchanhg"], ["wangzhe"], ["zhaoquanyin"], ["ZhaoZuoxiang"]]  # published order
    assert corpus.class_counts() == {e: 8 for e in CASIA_EMOTIONS}
    u = next(u for u in corpus.utterances if u.utt_id == "wangzhe_fear_202")
    assert u.label == "fear" and u.path == tmp_path / "wangzhe" / "fear" / "202.wav"
    train, valid, test = corpus.split(1)
    # 3 training speakers: validation is a stratified utterance slice (here 2 per group -> 0 held out)
    assert valid == [] and len(train) == 36 and len(test) == 12


def test_casia_unknown_emotion_folder(tmp_path):
    wav(tmp_path / "wangzhe" / "bored" / "201.wav")
    one_line_error("unknown CASIA emotion folder", lambda: load_casia(tmp_path))


# ------------------------------------------------------------------------------------------------ EMOVO
def test_emovo_codes_and_folds(tmp_path):
    codes = {"dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear", "rab": "angry",
             "sor": "surprise", "tri": "sad"}
    for speaker in ("f1", "f2", "f3", "m1", "m2", "m3"):
        for code in codes:
            wav(tmp_path / "EMOVO" / speaker / f"{code}-{speaker}-b1.wav")
    (tmp_path / "EMOVO" / "documents").mkdir()
    corpus = load_corpus("emovo", tmp_path / "EMOVO")
    assert corpus.classes == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert {u.utt_id: u.label for u in corpus.utterances if u.speaker == "m2"} == {
        f"{c}-m2-b1": label for c, label in codes.items()}
    assert corpus.folds() == [1, 2, 3, 4, 5, 6]
    assert [{u.speaker for u in corpus.split(k)[2]} for k in corpus.folds()] == [
        {"f1"}, {"f2"}, {"f3"}, {"m1"}, {"m2"}, {"m3"}]


def test_emovo_speaker_mismatch_and_bad_code(tmp_path):
    wav(tmp_path / "f1" / "neu-f2-b1.wav")
    one_line_error("speaker f2 in the file name but folder f1", lambda: load_emovo(tmp_path))
    (tmp_path / "f1" / "neu-f2-b1.wav").unlink()
    wav(tmp_path / "f1" / "xyz-f1-b1.wav")
    one_line_error("unknown EMOVO emotion code 'xyz'", lambda: load_emovo(tmp_path))


# ------------------------------------------------------------------------------------------------- URDU
def test_urdu_speaker_independent_single_fold(tmp_path):
    speakers = ["SM1", "SM2", "SM3", "SF1", "SF2", "SF3", "SM10", "SF11"]
    n = 0
    for folder, code in (("Angry", "A"), ("Happy", "H"), ("Neutral", "N"), ("Sad", "S")):
        for speaker in speakers:
            n += 1
            wav(tmp_path / folder / f"{speaker}_F{n}_{code}{n:02d}.wav")
    corpus = load_corpus("urdu", tmp_path)
    assert corpus.classes == ("angry", "happy", "neutral", "sad") and len(corpus) == 32
    assert set(corpus.speakers) == set(speakers)
    assert corpus.folds() == [1]
    train, valid, test = corpus.split(1)
    assert 0 < len(test) <= 8  # at most 25 % of utterances
    assert speakers_disjoint(train, valid, test) and len({u.speaker for u in valid}) == 1
    assert set(corpus.class_counts(test).values()) == {len(test) // 4}  # whole speakers: all 4 classes


def test_urdu_code_contradicting_folder(tmp_path):
    wav(tmp_path / "Angry" / "SM1_F1_H01.wav")
    one_line_error("contradicts folder Angry", lambda: load_urdu(tmp_path))


# --------------------------------------------------------------------------------------------- manifest
def test_manifest_csv_relative_paths_and_protocol(tmp_path):
    for name in ("a", "b", "c", "d"):
        wav(tmp_path / "audio" / f"{name}.wav")
    (tmp_path / "m.csv").write_text(
        "path,label,speaker,split,fold\n"
        "audio/a.wav,sad,s1,train,1\n"
        f"{tmp_path / 'audio' / 'b.wav'},angry,s2,val,2\n"
        "\n"
        "audio/c.wav,sad,s3,test,1\n"
        "audio/d.wav,angry,s4,train,2\n")
    corpus = load_corpus("manifest", tmp_path / "m.csv")
    assert corpus.classes == ("angry", "sad")
    assert [u.path for u in corpus.utterances] == [tmp_path / "audio" / f"{n}.wav" for n in "abcd"]
    assert [u.utt_id for u in corpus.utterances][:1] == ["audio/a"]
    train, valid, test = corpus.split()
    assert [u.speaker for u in train] == ["s1", "s4"] and [u.speaker for u in valid] == ["s2"]
    assert [u.speaker for u in test] == ["s3"]
    assert corpus.folds() == [1, 2]
    assert {u.speaker for u in corpus.split(2)[2]} == {"s2", "s4"}


def test_manifest_json_variants(tmp_path):
    wav(tmp_path / "x.wav")
    wav(tmp_path / "y.wav")
    (tmp_path / "list.json").write_text(json.dumps(
        {"classes": ["sad", "happy", "angry"], "utterances": [{"path": "x.wav", "label": "happy"},
                                                             {"path": "y.wav", "label": "sad"}]}))
    corpus = load_manifest(tmp_path / "list.json")
    assert corpus.classes == ("sad", "happy", "angry") and corpus.label_index(corpus.utterances[0]) == 1
    # EmoBox's own metadata: {key: {wav, emo, ...}}
    (tmp_path / "emobox.json").write_text(json.dumps(
        {"emodb-x": {"wav": "x.wav", "emo": "anger", "length": 0.15}, "emodb-y": {"wav": "y.wav", "emo": "sad"}}))
    corpus = load_manifest(tmp_path / "emobox.json")
    assert [(u.utt_id, u.label) for u in corpus.utterances] == [("emodb-x", "anger"), ("emodb-y", "sad")]
    (tmp_path / "m.jsonl").write_text('{"key": "k1", "wav": "x.wav", "emo": "neu", "spk": "A"}\n\n'
                                      '{"key": "k2", "wav": "y.wav", "emo": "neu", "spk": "B"}\n')
    corpus = load_corpus("manifest", tmp_path / "m.jsonl")
    assert [(u.utt_id, u.speaker) for u in corpus.utterances] == [("k1", "A"), ("k2", "B")]


def test_manifest_folder_lookup(tmp_path):
    wav(tmp_path / "x.wav")
    (tmp_path / "manifest.csv").write_text("path,label\nx.wav,neutral\n")
    corpus = load_corpus("manifest", tmp_path)
    assert len(corpus) == 1 and corpus.utterances[0].speaker == "unknown"
    one_line_error("no fixed train/valid/test split", lambda: corpus.split())
    one_line_error("no fold 1", lambda: corpus.split(1))
    (tmp_path / "sub").mkdir()
    one_line_error("no manifest.csv", lambda: load_corpus("manifest", tmp_path / "sub"))


@pytest.mark.parametrize("text, match", [
    ("recording,label\nx.wav,sad\n", "no 'path' column \\(columns: recording, label\\)"),
    ("path,emotion_name\nx.wav,sad\n", "no 'label' column"),
    ("path,label\nmissing.wav,sad\n", "line 2: audio file .*missing.wav not found"),
    ("path,label\nx.wav,\n", "line 2: empty label"),
    ("path,label,split\nx.wav,sad,holdout\n", "split 'holdout' is not train, valid or test"),
    ("path,label,fold\nx.wav,sad,first\n", "fold 'first' is not a positive integer"),
    ("path,label,fold\nx.wav,sad,0\n", "fold '0' is not a positive integer"),
    ("path,label\n", "lists no utterances"),
    ("", "manifest is empty"),
])
def test_manifest_errors_are_one_line_and_name_the_file(tmp_path, text, match):
    wav(tmp_path / "x.wav")
    (tmp_path / "m.csv").write_text(text)
    message = one_line_error(match, lambda: load_manifest(tmp_path / "m.csv"))
    assert str(tmp_path / "m.csv") in message


def test_manifest_unknown_label_and_format(tmp_path):
    wav(tmp_path / "x.wav")
    (tmp_path / "m.csv").write_text("path,label\nx.wav,bored\n")
    one_line_error("line 2: unknown label 'bored' \\(classes: angry, sad\\)",
                   lambda: load_manifest(tmp_path / "m.csv", classes=["angry", "sad"]))
    (tmp_path / "m.txt").write_text("x")
    one_line_error("unknown manifest format", lambda: load_manifest(tmp_path / "m.txt"))
    (tmp_path / "bad.json").write_text("{not json")
    one_line_error("not valid JSON", lambda: load_manifest(tmp_path / "bad.json"))
    one_line_error("manifest not found", lambda: load_manifest(tmp_path / "absent.csv"))


# ------------------------------------------------------------------------------------------- Corpus API
def fake(speaker: str, label: str, i: int, fold: int | None = None) -> Utterance:
    return Utterance(Path(f"/nowhere/{speaker}_{label}_{i}.wav"), label, speaker, f"{speaker}_{label}_{i}", fold)


def test_stratified_utterance_validation_keeps_speakers_and_classes_in_training():
    utts = [fake(s, lab, i, fold=int(s[1])) for s in ("s1", "s2", "s3", "s4") for lab in ("a", "b")
            for i in range(10)]
    corpus = Corpus("toy", Path("/nowhere"), tuple(utts), ("a", "b"))
    train, valid, test = corpus.split(4)
    assert {u.speaker for u in test} == {"s4"} and len(valid) == 6  # 10 % of each (speaker, label) group
    assert {(u.speaker, u.label) for u in valid} == {(s, lab) for s in ("s1", "s2", "s3") for lab in "ab"}
    assert corpus.split(4) == (train, valid, test)  # deterministic
    assert corpus.split(4, valid_by="none")[1] == []
    assert {u.speaker for u in corpus.split(4, valid_by="speaker")[1]} == {"s1"}  # next fold wraps to 1


def test_corpus_rejects_inconsistent_records():
    good = fake("s1", "a", 0)
    one_line_error("no toy utterances", lambda: Corpus("toy", Path("/r"), (), ("a",)))
    one_line_error("label 'b' is not one of", lambda: Corpus("toy", Path("/r"), (fake("s1", "b", 0),), ("a",)))
    one_line_error("duplicate utterance id", lambda: Corpus("toy", Path("/r"), (good, good), ("a",)))


def test_registry_unknown_name(tmp_path):
    one_line_error("unknown corpus 'timit'", lambda: load_corpus("timit", tmp_path))
