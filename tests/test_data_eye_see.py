"""SEE loader on small fake trees in the published layout, the dataset interface and the SEE metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ptsnn.data import load_eye_dataset
from ptsnn.data.eye import SEE_CLASSES, load_see
from ptsnn.errors import InputError, PtsnnError
from ptsnn.train.metrics import eye_emotion_metrics

# (sequence name, label, subset, frames, segment)
SEQUENCES = [
    ("1_001_man_24_Master_normal_angry_8_take000", "angry", "training", 8, [2, 5]),
    ("2_001_man_24_Master_HDR_neutraL_6_take000", "neutraL", "training", 6, [0, 5]),
    ("3_002_woman_30_PhD_overexposure_fear_7_take001", "fear", "training", 7, [1, 6]),
    ("4_003_woman_22_Bachelor_lowlight_surprise_5_take000", "surprise", "training", 5, [0, 4]),
    ("5_004_man_41_Master_low-light_sadness_9_take000", "sadness", "testing", 9, [3, 8]),
    ("6_005_man_35_PhD_normal_happiness_6_take002", "happiness", "testing", 6, [0, 2]),
]


def frame_value(modality: str, index: int) -> int:
    """Grey level of frame ``index``: uniform images survive JPEG exactly enough to identify the frame."""
    return 10 + 20 * index if modality == "frame" else 200 - 15 * index


def write_see(root: Path, sequences=SEQUENCES, size=(20, 16)) -> Path:
    base = root / "SEE"
    database = {}
    for name, label, subset, n, segment in sequences:
        for modality in ("frame", "event"):
            folder = base / modality / label / name
            folder.mkdir(parents=True)
            for i in range(n):
                mode = "L" if modality == "frame" else "RGB"
                Image.new(mode, size, color=frame_value(modality, i) if mode == "L"
                          else (frame_value(modality, i),) * 3).save(folder / f"{i:05d}.jpg", quality=95)
        database[name] = {"subset": subset, "annotations": {"label": label, "segment": segment}}
    (base / "emotion.json").write_text(json.dumps({"labels": list(SEE_CLASSES), "database": database}))
    return base


@pytest.fixture
def see(tmp_path):
    return write_see(tmp_path)


def test_load_see_layout_segment_and_metadata(see):
    ds = load_see(see.parent, frames=4, size=8, valid_fraction=0.0)
    assert ds.sequences.shape == (6, 4, 2, 8, 8) and ds.sequences.dtype == np.float32
    assert ds.channels == ("frame", "event") and ds.classes == SEE_CLASSES
    by_name = {n: i for i, n in enumerate(ds.names)}
    i = by_name["1_001_man_24_Master_normal_angry_8_take000"]
    assert ds.classes[ds.labels[i]] == "angry" and ds.subjects[i] == "001" and ds.lighting[i] == "normal"
    # segment [2, 5] resampled to 4 frames: frames 2, 3, 4, 5, in both trees.
    got = np.rint(ds.sequences[i].mean(axis=(2, 3)) * 255)
    want = np.array([[frame_value("frame", k), frame_value("event", k)] for k in (2, 3, 4, 5)])
    assert np.abs(got - want).max() <= 2
    # segment [0, 2] stretched to 4 frames repeats frames (nearest): 0, 1, 1, 2.
    j = by_name["6_005_man_35_PhD_normal_happiness_6_take002"]
    got = np.rint(ds.sequences[j, :, 0].mean(axis=(1, 2)) * 255)
    assert np.abs(got - [frame_value("frame", k) for k in (0, 1, 1, 2)]).max() <= 2
    lighting = dict(zip(ds.names, ds.lighting))
    assert [lighting[s[0]] for s in SEQUENCES] == ["normal", "HDR", "overexposure", "low-light", "low-light", "normal"]
    splits = dict(zip(ds.names, ds.splits))
    assert [splits[s[0]] for s in SEQUENCES] == ["train"] * 4 + ["test"] * 2


def test_valid_split_is_subject_disjoint_and_from_training(see):
    ds = load_see(see, frames=2, size=4, valid_fraction=0.5)
    valid, train, test = (set(ds.subset(p).subjects) for p in ("valid", "train", "test"))
    assert valid and train and not (valid & train) and not (valid & test)
    assert set(ds.subset("test").names) == {s[0] for s in SEQUENCES if s[2] == "testing"}


def test_channel_option_and_spec(see):
    import shutil

    shutil.rmtree(see / "event")  # a frame-only copy needs no event tree
    ds = load_eye_dataset(f"see:{see}", frames=3, size=6, channels="frame")
    assert ds.sequences.shape == (6, 3, 1, 6, 6) and ds.channels == ("frame",)
    with pytest.raises(InputError, match="event: missing"):
        load_eye_dataset(f"see:{see}", channels="event")
    with pytest.raises(InputError, match="expected 'synthetic-eye' or 'see:PATH'"):
        load_eye_dataset("see:")
    with pytest.raises(InputError, match="channels"):
        load_eye_dataset(f"see:{see}", channels="rgb")


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert isinstance(exc.value, PtsnnError) and "\n" not in message
    return message


def test_missing_frame_is_named(see):
    folder = see / "event" / "angry" / SEQUENCES[0][0]
    (folder / "00003.jpg").unlink()
    with pytest.raises(InputError) as exc:
        load_see(see)
    message = one_line(exc)
    assert str(folder) in message and "missing frame(s) 00003" in message


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_is_named(see, damage):
    path = see / "frame" / "fear" / SEQUENCES[2][0] / "00003.jpg"
    data = path.read_bytes()
    path.write_bytes(b"not a jpeg at all" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(InputError) as exc:
        load_see(see, frames=6)
    message = one_line(exc)
    assert str(path) in message and "corrupt" in message


def test_huge_declared_image_is_refused_before_decoding(see):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = see / "frame" / "fear" / SEQUENCES[2][0] / "00003.jpg"  # PIL reads by content, not by suffix
    ihdr = struct.pack(">IIBBBBB", 6_000, 6_000, 8, 0, 0, 0, 0)  # 36 Mpx grey (below PIL's own limits), in 33 bytes
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    with pytest.raises(InputError) as exc:
        load_see(see, frames=6)
    message = one_line(exc)
    assert "00003.jpg" in message and "6000x6000" in message


def test_trees_must_agree(see):
    stray = see / "event" / "angry" / "9_009_man_20_Master_normal_angry_3_take000"
    stray.mkdir()
    with pytest.raises(InputError) as exc:
        load_see(see)
    assert "trees disagree" in one_line(exc) and str(stray) in str(exc.value)
    stray.rmdir()
    (see / "event" / "fear" / SEQUENCES[2][0] / "00006.jpg").unlink()  # 6 event frames, 7 intensity frames
    with pytest.raises(InputError, match="6 event frames but .* has 7 intensity frames"):
        load_see(see)


@pytest.mark.parametrize("edit, expected", [
    (lambda doc: "{not json", "not valid JSON"),
    (lambda doc: "[" * 100_000 + "]" * 100_000, "nested"),  # json's recursion limit: one line, not a traceback
    (lambda doc: '{"labels": NaN}', "not valid JSON"),
    (lambda doc: {**doc, "labels": []}, "'labels' must be"),
    (lambda doc: {"labels": doc["labels"]}, "'database' must be"),
    (lambda doc: doc["database"][SEQUENCES[0][0]].update(subset="train"), r"\.subset: 'train'"),
    (lambda doc: doc["database"][SEQUENCES[0][0]]["annotations"].update(label="neutral"), "not in 'labels'"),
    (lambda doc: doc["database"][SEQUENCES[0][0]]["annotations"].update(segment=[5, 2]), r"\.segment"),
    (lambda doc: doc["database"][SEQUENCES[0][0]]["annotations"].update(segment=[2, 8]), "past the sequence's last frame 7"),
    (lambda doc: doc["database"].update({"1_001_angry": doc["database"][SEQUENCES[0][0]]}), "9 fields"),
    (lambda doc: doc["database"].update({"1_001_m_2_M_sunny_angry_8_take0": doc["database"][SEQUENCES[0][0]]}),
     "unknown lighting condition 'sunny'"),
    (lambda doc: doc["database"].update({"7_001_m_2_M_HDR_angry_8_take9": doc["database"][SEQUENCES[0][0]]}),
     "sequence folder missing"),
])
def test_bad_annotations(see, edit, expected):
    path = see / "emotion.json"
    doc = json.loads(path.read_text())
    result = edit(doc)
    path.write_text(result if isinstance(result, str) else json.dumps(result if isinstance(result, dict) else doc))
    with pytest.raises(InputError, match=expected) as exc:
        load_see(see)
    assert "\n" not in str(exc.value)


def test_missing_annotations_file(tmp_path):
    (tmp_path / "SEE" / "frame").mkdir(parents=True)
    (tmp_path / "SEE" / "event").mkdir()
    with pytest.raises(InputError, match="emotion.json: missing"):
        load_see(tmp_path)


def test_eye_emotion_metrics_war_uar_per_lighting():
    classes = ["a", "b", "c"]
    y_true = [0, 0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 0, 2, 2, 0]
    light = ["normal", "HDR", "normal", "HDR", "HDR", "normal", "low-light", "low-light"]
    m = eye_emotion_metrics(y_true, y_pred, classes, light, lighting_order=["normal", "overexposure", "low-light", "HDR"])
    assert m["war"] == pytest.approx(5 / 8)
    assert m["uar"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert m["per_class_accuracy"] == pytest.approx({"a": 2 / 3, "b": 1 / 2, "c": 2 / 3})
    assert list(m["per_lighting"]) == ["normal", "low-light", "HDR"]  # order kept, absent condition left out
    assert m["per_lighting"]["normal"]["war"] == pytest.approx(2 / 3) and m["per_lighting"]["normal"]["count"] == 3
    assert m["per_lighting"]["low-light"]["war"] == pytest.approx(1 / 2)
    assert m["per_lighting"]["HDR"]["war"] == pytest.approx(2 / 3)
    assert m["per_lighting"]["HDR"]["uar"] == pytest.approx((1 + 1 / 2) / 2)  # classes present: a, b
    json.dumps(m)  # plain types
    empty = eye_emotion_metrics([], [], classes, [])
    assert math.isnan(empty["war"]) and empty["per_lighting"] == {}


def test_subject_split_proportions_and_options(see):
    from ptsnn.data.eye import subject_split

    parts = subject_split([f"{i:03d}" for i in range(10)], (0.6, 0.2, 0.2))
    assert sorted(parts.values()).count("test") == 2 and sorted(parts.values()).count("valid") == 2
    assert set(subject_split(["a", "b", "c", "d"], (0.75, 0.25, 0.0)).values()) == {"train", "valid"}
    with pytest.raises(InputError, match="frames=0"):
        load_see(see, frames=0)
    with pytest.raises(InputError, match="valid_fraction"):
        load_see(see, valid_fraction=1.0)
