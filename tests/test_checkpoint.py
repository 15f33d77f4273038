"""Checkpoints: atomic save, weights_only load, same logits after a round trip (float and QAT), and a
one-line InputError naming the file for every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ptsnn.chip.serialize import to_dict
from ptsnn.errors import InputError
from ptsnn.train.checkpoint import FORMAT, load_model, read_checkpoint, save_checkpoint
from ptsnn.train.config import Config, ModelConfig
from ptsnn.train.model import PTSSNN

LABELS = {"angry": 0, "happy": 1, "sad": 2}
SPEC = {"kind": "fbank", "n_mels": 8}


def tiny_config() -> Config:
    return Config(model=ModelConfig(input_dim=8, num_classes=3, hidden=16, blocks=1, key_dim=8, value_dim=8,
                                    prompts=2), name="tiny")


def batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 30, 8, generator=g)
    return x, torch.tensor([30, 25, 12, 30])


def float_model() -> PTSSNN:
    torch.manual_seed(0)
    cfg = tiny_config()
    m = PTSSNN(cfg.model)
    m.data_init(*batch())
    return m.eval()


def quantized_model() -> PTSSNN:
    m = float_model()
    m.quantize()
    # one QAT step so the weights differ from the float ones
    m.train()
    x, lengths = batch()
    loss = torch.nn.functional.cross_entropy(m(x, lengths).logits, torch.tensor([0, 1, 2, 0]))
    loss.backward()
    with torch.no_grad():
        for p in m.parameters():
            if p.grad is not None:
                p -= 0.05 * p.grad
    return m.eval()


@pytest.fixture
def saved(tmp_path) -> Path:
    return save_checkpoint(tmp_path / "model.pt", float_model(), tiny_config(), LABELS, SPEC, {"valid": {"ua": 0.5}})


def raw(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_one_line_error(path: Path, match: str):
    with pytest.raises(InputError) as info:
        load_model(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg, msg
    assert match in msg, msg
    return msg


# ----------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("make", [float_model, quantized_model], ids=["float", "qat"])
def test_round_trip_gives_identical_logits(tmp_path, make):
    model = make()
    x, lengths = batch()
    with torch.no_grad():
        before = model(x, lengths).logits
    path = save_checkpoint(tmp_path / "m.pt", model, tiny_config(), LABELS, SPEC, {"epoch": 3, "ua": 0.61})
    loaded, ckpt = load_model(path)
    assert loaded.quantized == model.quantized == ckpt.quantized
    with torch.no_grad():
        after = loaded(x, lengths).logits
    assert torch.equal(before, after)
    assert ckpt.label_map == LABELS and ckpt.classes == ["angry", "happy", "sad"]
    assert ckpt.frontend == SPEC and ckpt.metrics == {"epoch": 3, "ua": 0.61}
    assert ckpt.config.to_dict() == tiny_config().to_dict()
    assert set(ckpt.versions) == {"ptsnn", "torch", "python"}


def test_qat_state_survives_in_buffers(tmp_path):
    model = quantized_model()
    path = save_checkpoint(tmp_path / "q.pt", model, tiny_config(), LABELS, SPEC)
    loaded, _ = load_model(path)
    assert loaded.quantized
    for a, b in zip(model.populations, loaded.populations):
        if hasattr(a, "scale_exponent"):
            assert int(a.scale_exponent) == int(b.scale_exponent)
    (sa, aa), (sb, ab) = to_dict(loaded.chip_graph()), to_dict(model.chip_graph())
    assert sa == sb and aa.keys() == ab.keys() and all(np.array_equal(aa[k], ab[k]) for k in aa)


def test_file_holds_only_plain_types(saved):
    obj = raw(saved)  # weights_only: would fail on any other object
    assert obj["format"] == FORMAT and obj["format_version"] == 1 and obj["quantized"] is False
    assert type(obj["state_dict"]) is dict and all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values())


def test_save_is_atomic_and_replaces(tmp_path, saved):
    first = saved.read_bytes()
    save_checkpoint(saved, quantized_model(), tiny_config(), LABELS, SPEC)
    assert saved.read_bytes() != first
    assert read_checkpoint(saved).quantized
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temp files left

    class Boom(Exception):
        pass

    def failing_save(*a, **k):
        raise Boom()

    before = saved.read_bytes()
    orig = torch.save
    torch.save = failing_save
    try:
        with pytest.raises(Boom):
            save_checkpoint(saved, float_model(), tiny_config(), LABELS, SPEC)
    finally:
        torch.save = orig
    assert saved.read_bytes() == before  # the old checkpoint is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# ----------------------------------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    assert_one_line_error(tmp_path / "nope.pt", "not found")


def test_directory(tmp_path):
    d = tmp_path / "dir.pt"
    d.mkdir()
    assert_one_line_error(d, "not a file")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    assert_one_line_error(p, "empty")


@pytest.mark.parametrize("content", [b"hello, I am not a checkpoint\n" * 20, b"junk", b"\x80\x02}q\x00."])
def test_not_a_torch_file(tmp_path, content):
    p = tmp_path / "text.pt"
    p.write_bytes(content)
    assert_one_line_error(p, "not a PyTorch checkpoint")


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated(tmp_path, saved, keep):
    data = saved.read_bytes()
    p = tmp_path / "cut.pt"
    p.write_bytes(data[: int(len(data) * keep)])
    assert_one_line_error(p, "truncated")


def test_bare_state_dict_is_not_a_ptsnn_checkpoint(tmp_path):
    p = tmp_path / "bare.pt"
    torch.save(float_model().state_dict(), p)
    assert_one_line_error(p, "not a ptsnn checkpoint")


def test_other_dict_is_not_a_ptsnn_checkpoint(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"format": "something-else", "weights": torch.zeros(2)}, p)
    assert_one_line_error(p, "not a ptsnn checkpoint")


class _Payload:
    """Unpickling this would create a marker file: weights_only must refuse it before that happens."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_refused_and_never_runs(tmp_path, saved):
    marker = tmp_path / "pwned"
    _Payload.marker = str(marker)
    obj = raw(saved)
    obj["metrics"] = {"x": _Payload()}
    p = tmp_path / "evil.pt"
    torch.save(obj, p)
    assert not marker.exists()  # saving did not run it either
    assert_one_line_error(p, "refused")
    assert not marker.exists()


def _tamper(tmp_path: Path, saved: Path, edit) -> Path:
    obj = raw(saved)
    edit(obj)
    p = tmp_path / "tampered.pt"
    torch.save(obj, p)
    return p


def test_missing_state_dict_key(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o["state_dict"].pop("readout.weight"))
    msg = assert_one_line_error(p, "missing 1")
    assert "readout.weight" in msg


def test_extra_state_dict_key(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o["state_dict"].__setitem__("mystery.weight", torch.zeros(3)))
    msg = assert_one_line_error(p, "unexpected 1")
    assert "mystery.weight" in msg


def test_wrong_shape(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o["state_dict"].__setitem__("readout.weight", torch.zeros(3, 5)))
    msg = assert_one_line_error(p, "shape")
    assert "readout.weight" in msg and "(3, 5)" in msg and "(3, 16)" in msg


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tensor(tmp_path, saved, bad):
    def edit(o):
        o["state_dict"]["host.norm.weight"][2] = bad

    msg = assert_one_line_error(_tamper(tmp_path, saved, edit), "NaN/Inf")
    assert "host.norm.weight" in msg


def test_missing_field(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o.pop("label_map"))
    assert_one_line_error(p, "missing field(s) label_map")


def test_newer_format_version(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o.__setitem__("format_version", 99))
    assert_one_line_error(p, "newer")


def test_invalid_config(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o["config"]["model"].__setitem__("hidden", 0))
    assert_one_line_error(p, "model.hidden: input should be greater than or equal to 1")
    p = _tamper(tmp_path, saved, lambda o: o["config"]["model"].__setitem__("bogus_field", 1))
    assert_one_line_error(p, "model.bogus_field: unknown field")


def test_quantized_flag_must_agree(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o.__setitem__("quantized", True))
    assert_one_line_error(p, "quantized_flag")


def test_label_map_must_match_classes(tmp_path, saved):
    p = _tamper(tmp_path, saved, lambda o: o.__setitem__("label_map", {"angry": 0, "sad": 1}))
    assert_one_line_error(p, "label_map")


def test_error_messages_are_one_line_even_for_odd_names(tmp_path):
    p = tmp_path / "with space.pt"
    p.write_bytes(bytes(range(7, 71)))  # fixed junk bytes
    assert_one_line_error(p, "not a PyTorch checkpoint")
