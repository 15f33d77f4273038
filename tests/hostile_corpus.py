"""Generated bad inputs, one list per reader (docs/security.md): each case writes one hostile file.

``CASES[reader]`` is a list of ``(case name, build(folder) -> path, expected text or None)``; ``VALID[reader]``
builds a valid file of that kind (the fuzz tests mutate its bytes) and ``READ[reader]`` calls the reader.
Every case must end in a one-line :class:`~ptsnn.errors.PtsnnError` naming the file.
"""

from __future__ import annotations

import struct
import types
import zipfile
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

Case = tuple[str, Callable[[Path], Path], "str | None"]
RNG_SEEDS = (1, 2, 3)


def _random_bytes(seed: int, n: int = 512) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _byte_cases(valid: Callable[[Path], Path], suffix: str, cuts=(0.1, 0.5, 0.9)) -> list[Case]:
    """Empty, random and truncated versions of a valid file."""
    cases: list[Case] = [("empty", lambda d: _write(d / f"empty{suffix}", b""), None)]
    for s in RNG_SEEDS:
        cases.append((f"random{s}", lambda d, s=s: _write(d / f"random{s}{suffix}", _random_bytes(s)), None))
    for c in cuts:
        def cut(d: Path, c=c) -> Path:
            data = valid(d / "src").read_bytes()
            return _write(d / f"cut{suffix}", data[: int(len(data) * c)])
        cases.append((f"truncated{int(c * 100)}", cut, None))
    return cases


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# ============================================================================================== checkpoints
LABELS = {"angry": 0, "happy": 1, "sad": 2}


def _tiny_model():
    import torch

    from ptsnn.train.config import Config, ModelConfig
    from ptsnn.train.model import PTSSNN

    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(input_dim=8, num_classes=3, hidden=16, blocks=1, key_dim=8, value_dim=8,
                                   prompts=2), name="tiny")
    return PTSSNN(cfg.model).eval(), cfg


def valid_checkpoint(folder: Path) -> Path:
    from ptsnn.train.checkpoint import save_checkpoint

    model, cfg = _tiny_model()
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(folder / "model.pt", model, cfg, LABELS, {"kind": "fbank", "n_mels": 8})


def _tampered(change: Callable[[dict], None], name: str) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        import torch

        obj = torch.load(valid_checkpoint(d / "src"), map_location="cpu", weights_only=True)
        change(obj)
        out = d / f"{name}.pt"
        torch.save(obj, out)
        return out
    return build


def _flip_record(which: int) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = valid_checkpoint(d / "src")
        data = bytearray(p.read_bytes())
        with zipfile.ZipFile(p) as zf:
            infos = [i for i in zf.infolist() if "/data/" in i.filename and i.file_size >= 16]
        info = infos[which % len(infos)]
        n, e = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
        data[info.header_offset + 30 + n + e + 5] ^= 0x40
        return _write(d / f"flip{which}.pt", bytes(data))
    return build


def _set_tensor(key_part: str, make) -> Callable[[dict], None]:
    def change(obj: dict) -> None:
        key = next(k for k in obj["state_dict"] if key_part in k)
        obj["state_dict"][key] = make(obj["state_dict"][key])
    return change


def _checkpoint_cases() -> list[Case]:
    import torch

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    def evil(d: Path) -> Path:
        import pickle
        return _write(d / "evil.pt", pickle.dumps({"format": "ptsnn-checkpoint", "x": Evil()}, protocol=2))

    def cfg(section: str, key: str, value) -> Callable[[dict], None]:
        return lambda o: o["config"][section].__setitem__(key, value)

    t = _tampered
    cases: list[Case] = _byte_cases(valid_checkpoint, ".pt")
    cases += [(f"bitflip{i}", _flip_record(i), "CRC-32") for i in range(3)]
    cases += [
        ("code_pickle", evil, "refused"),
        ("complex_weight", t(_set_tensor("weight", lambda w: w.to(torch.complex64)), "cplx"), "dtype"),
        ("bool_weight", t(_set_tensor("weight", lambda w: w > 0), "bool"), "dtype"),
        ("int_weight", t(_set_tensor("weight", lambda w: w.to(torch.int64)), "intw"), "dtype"),
        ("fractional_exponent", t(_set_tensor("scale_exponent", lambda e: torch.tensor(2.5)), "frac"), "exponent"),
        ("absurd_exponent", t(_set_tensor("scale_exponent", lambda e: torch.tensor(10**6)), "absurd"), "exponent"),
        ("negative_exponent", t(_set_tensor("readout_exponent", lambda e: torch.tensor(-1000)), "neg"), "exponent"),
        ("nan_weight", t(_set_tensor("weight", lambda w: w.fill_(float("nan"))), "nan"), "NaN"),
        ("inf_bias", t(_set_tensor("bias", lambda w: w.fill_(float("inf"))), "inf"), "NaN"),
        ("huge_weight", t(_set_tensor("weight", lambda w: w.fill_(1e30)), "huge"), "beyond"),
        ("not_a_tensor", t(_set_tensor("weight", lambda w: [1, 2]), "list"), "not a tensor"),
        ("missing_field", t(lambda o: o.pop("label_map"), "miss"), "missing"),
        ("wrong_format", t(lambda o: o.__setitem__("format", "other"), "fmt"), "not a ptsnn checkpoint"),
        ("version_string", t(lambda o: o.__setitem__("format_version", "1"), "fv"), "format_version"),
        ("future_version", t(lambda o: o.__setitem__("format_version", 99), "fv99"), "newer"),
        ("hidden_1e9", t(cfg("model", "hidden", 10**9), "h"), "model.hidden"),
        ("blocks_1e6", t(cfg("model", "blocks", 10**6), "b"), "model.blocks"),
        ("lr_negative", t(cfg("train", "lr", -1.0), "lr"), "train.lr"),
        ("dropout_2", t(cfg("model", "dropout", 2.0), "do"), "model.dropout"),
        ("hidden_string", t(cfg("model", "hidden", "16"), "hs"), "model.hidden"),
        ("unknown_section", t(lambda o: o["config"].__setitem__("extra", {}), "sec"), "unknown section"),
        ("unknown_frontend", t(lambda o: o.__setitem__("frontend", {"kind": "nope"}), "fe"), "frontend.kind"),
        ("frontend_not_dict", t(lambda o: o.__setitem__("frontend", [1]), "fe2"), "frontend"),
        ("label_map_gap", t(lambda o: o.__setitem__("label_map", {"a": 0, "b": 1, "c": 5}), "lm"), "label_map"),
        ("extra_tensor", t(lambda o: o["state_dict"].__setitem__("bogus", torch.zeros(1)), "extra"), "unexpected"),
        ("shape_mismatch", t(_set_tensor("readout.weight", lambda w: torch.zeros(2, 2)), "shape"), "shape"),
        ("quantized_mismatch", t(lambda o: o.__setitem__("quantized", True), "q"), "quantized"),
        ("bare_state_dict", lambda d: _bare(d), "bare state dict"),
        ("deep_config", t(lambda o: o.__setitem__("config", _nested(200)), "deep"), "nested"),
    ]
    return cases


def _nested(depth: int) -> dict:
    v: dict = {}
    for _ in range(depth):
        v = {"model": v}
    return v


def _bare(d: Path) -> Path:
    import torch

    model, _ = _tiny_model()
    d.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), d / "bare.pt")
    return d / "bare.pt"


def read_checkpoint(path: Path):
    from ptsnn.train.checkpoint import load_model

    return load_model(path)


# ============================================================================================== calibration
DIM = 8
_MODEL = types.SimpleNamespace(cfg=types.SimpleNamespace(input_dim=DIM))


def valid_calibration(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(folder / "calib.npz", features=rng.normal(size=(3, 12, DIM)).astype(np.float32),
             lengths=np.array([12, 9, 5]))
    return folder / "calib.npz"


def _npz(name: str, **arrays) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / f"{name}.npz", **arrays)
        return d / f"{name}.npz"
    return build


def _calib_dir(name: str, *arrays: np.ndarray, pickled: bool = False) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        folder = d / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(arrays):
            np.save(folder / f"u{i}.npy", a, allow_pickle=pickled)
        return folder
    return build


def _flip_npz(d: Path) -> Path:
    p = valid_calibration(d / "src")
    data = bytearray(p.read_bytes())
    data[200] ^= 0x08  # inside the features member's data: its CRC-32 no longer matches
    return _write(d / "flip.npz", bytes(data))


def _calibration_cases() -> list[Case]:
    f = np.random.default_rng(0).normal(size=(2, 6, DIM)).astype(np.float32)
    nan, inf, huge = f.copy(), f.copy(), f.copy()
    nan[0, 0, 0], inf[1, 2, 3], huge[0, 1, 1] = np.nan, np.inf, 1e30
    obj = np.empty((2,), dtype=object)
    ok2 = f[0]
    cases: list[Case] = _byte_cases(valid_calibration, ".npz")
    cases += [
        ("nan_features", _npz("nan", features=nan), "NaN"),
        ("inf_features", _npz("inf", features=inf), "NaN"),
        ("huge_features", _npz("huge", features=huge), "exceeds"),
        ("object_features", _npz("obj", features=obj), "objects"),
        ("complex_features", _npz("cplx", features=f.astype(np.complex64)), "dtype"),
        ("string_features", _npz("str", features=np.array(["a", "b"])), "dtype"),
        ("bool_features", _npz("bool", features=f > 0), "dtype"),
        ("features_2d", _npz("twod", features=f[0]), "shape"),
        ("wrong_dim", _npz("dim", features=f[..., :5]), "shape"),
        ("zero_batch", _npz("zero", features=f[:0]), "shape"),
        ("no_features", _npz("nofeat", other=f), "no 'features'"),
        ("lengths_shape", _npz("lshape", features=f, lengths=np.array([1, 2, 3])), "lengths"),
        ("lengths_zero", _npz("lzero", features=f, lengths=np.array([0, 3])), "lengths"),
        ("lengths_too_long", _npz("llong", features=f, lengths=np.array([7, 3])), "lengths"),
        ("lengths_float", _npz("lfloat", features=f, lengths=np.array([1.5, 3.0])), "lengths"),
        ("bitflip_member", _flip_npz, "damaged"),
        ("non_npy_member", lambda d: _zip(d, {"features.txt": b"1,2,3"}), "not an .npy"),
        ("npy_not_npz", lambda d: _npy_file(d, "single.npz", f), None),
        ("empty_folder", lambda d: (d / "emptydir").mkdir(parents=True) or d / "emptydir", "no audio or .npy"),
        ("folder_nan", _calib_dir("dnan", nan[0]), "NaN"),
        ("folder_3d", _calib_dir("d3", f), "2-D"),
        ("folder_wrong_dim", _calib_dir("ddim", ok2[:, :3]), "expected [frames, 8]"),
        ("folder_object", _calib_dir("dobj", obj, pickled=True), "objects"),
        ("folder_truncated", lambda d: _trunc_npy_dir(d, ok2), "truncated"),
        ("unknown_suffix", lambda d: _write(d / "calib.txt", "1 2 3"), "or an .npz"),
    ]
    return cases


def _zip(d: Path, members: dict[str, bytes]) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(d / "custom.npz", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return d / "custom.npz"


def _npy_file(d: Path, name: str, arr: np.ndarray) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    with open(d / name, "wb") as fh:
        np.save(fh, arr)
    return d / name


def _trunc_npy_dir(d: Path, arr: np.ndarray) -> Path:
    folder = d / "dtrunc"
    p = _npy_file(folder, "u0.npy", arr)
    p.write_bytes(p.read_bytes()[:-7])
    return folder


def read_calibration(path: Path):
    from ptsnn.convert.bundle import load_calibration

    return load_calibration(str(path), _MODEL, {"kind": "fbank", "n_mels": DIM})


# ============================================================================================== netx
def _netx(mutate: Callable | None = None, name: str = "net") -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        import h5py

        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{name}.net"
        with h5py.File(p, "w") as f:
            g0 = f.create_group("layer/0")
            g0.create_dataset("type", (1,), "S10", [b"input"])
            g0.create_dataset("shape", data=np.array([4], np.int64))
            g1 = f.create_group("layer/1")
            g1.create_dataset("type", (1,), "S10", [b"dense"])
            g1.create_dataset("shape", data=np.array([3], np.int64))
            g1.create_dataset("weight", data=np.arange(12, dtype=np.int64).reshape(3, 4) * 2)
            g1.create_dataset("neuron/type", (1,), "S10", [b"CUBA"])
            g1.create_dataset("neuron/vThMant", data=np.int64(80))
            g1.create_dataset("neuron/iDecay", data=np.int64(4096))
            g1.create_dataset("neuron/vDecay", data=np.int64(1024))
            if mutate is not None:
                mutate(f)
        return p
    return build


def valid_netx(folder: Path) -> Path:
    return _netx()(folder)


def _replace(path: str, **kw) -> Callable:
    def mutate(f) -> None:
        del f[path]
        if "group" in kw:
            f.create_group(path)
        else:
            f.create_dataset(path, **kw)
    return mutate


def _netx_cases() -> list[Case]:
    n = _netx
    cases: list[Case] = _byte_cases(valid_netx, ".net", cuts=(0.05, 0.3, 0.6, 0.95))
    cases += [
        ("no_layer_group", n(lambda f: f.move("layer", "layers"), "nolayer"), "no 'layer'"),
        ("layer_is_dataset", n(lambda f: (f.__delitem__("layer"), f.create_dataset("layer", data=[1])), "lds"),
         "no 'layer'"),
        ("empty_layer_group", n(lambda f: (f.__delitem__("layer"), f.create_group("layer")), "empty"), "empty"),
        ("layer0_missing", n(lambda f: f.move("layer/0", "layer/7"), "l0"), "missing"),
        ("layer_entry_dataset", n(lambda f: (f.__delitem__("layer/1"), f.create_dataset("layer/1", data=[1])), "ld"),
         "dataset"),
        ("type_is_group", n(_replace("layer/1/type", group=True), "tg"), "group"),
        ("weight_is_group", n(_replace("layer/1/weight", group=True), "wg"), "group"),
        ("weight_scalar", n(_replace("layer/1/weight", data=np.int64(3)), "ws"), None),
        ("weight_empty", n(_replace("layer/1/weight", data=np.zeros((0,), np.int64)), "we"), "empty"),
        ("weight_nan", n(_replace("layer/1/weight", data=np.full((3, 4), np.nan)), "wn"), "NaN"),
        ("weight_1e30", n(_replace("layer/1/weight", data=np.full((3, 4), 1e30)), "wh"), "exceeds"),
        ("weight_strings", n(_replace("layer/1/weight", data=np.array([b"ab"] * 12).reshape(3, 4)), "wstr"),
         "dtype"),
        ("weight_100GB", n(_replace("layer/1/weight", shape=(250_000, 50_000), dtype="f8", chunks=(1, 1000)), "big"),
         "limit"),
        ("input_1e13_neurons", n(_replace("layer/0/shape", data=np.array([10**13], np.int64)), "i13"), "neurons"),
        ("shape_negative", n(_replace("layer/1/shape", data=np.array([-3], np.int64)), "sn"), "< 1"),
        ("shape_fractional", n(_replace("layer/1/shape", data=np.array([2.5])), "sf"), "integers"),
        ("shape_empty", n(_replace("layer/1/shape", data=np.zeros((0,), np.int64)), "se"), "empty"),
        ("vdecay_group", n(_replace("layer/1/neuron/vDecay", group=True), "vg"), "group"),
        ("idecay_vector", n(_replace("layer/1/neuron/iDecay", data=np.arange(3)), "iv"), "one number"),
        ("neuron_dataset", n(lambda f: (f.__delitem__("layer/1/neuron"), f.create_dataset("layer/1/neuron", data=1)),
                              "nd"), "neuron"),
        ("neuron_type_empty", n(_replace("layer/1/neuron/type", shape=(0,), dtype="S10"), "nte"), "empty"),
        ("neuron_unknown", n(_replace("layer/1/neuron/type", data=[b"ALIEN"]), "nu"), "unknown"),
        ("layer_unknown", n(_replace("layer/1/type", data=[b"alien"]), "lu"), "unknown type"),
        ("weight_rows", n(_replace("layer/1/weight", data=np.ones((2, 4), np.int64)), "wr"), "rows"),
        ("delay_negative", n(lambda f: f.create_dataset("layer/1/delay", data=-np.ones((3, 4))), "dn"), "negative"),
        ("vth_missing", n(lambda f: f.__delitem__("layer/1/neuron/vThMant"), "vm"), "vThMant"),
    ]
    return cases


def read_netx(path: Path):
    from ptsnn.formats.netx import read_netx as read

    return read(path)


# ============================================================================================== .npy inputs
def valid_npy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x.npy", (np.arange(2 * 4 * 10).reshape(2, 4, 10) % 3).astype(np.int32))
    return folder / "x.npy"


def _arr(name: str, arr, pickled: bool = False) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / f"{name}.npy", arr, allow_pickle=pickled)
        return d / f"{name}.npy"
    return build


def _header(name: str, header: str, data: bytes = b"", magic: bytes = b"\x93NUMPY\x01\x00") -> Callable:
    def build(d: Path) -> Path:
        h = header.encode("latin1")
        pad = 64 - (len(magic) + 2 + len(h) + 1) % 64
        blob = magic + struct.pack("<H", len(h) + pad + 1) + h + b" " * pad + b"\n" + data
        return _write(d / f"{name}.npy", blob)
    return build


def _npy_cases() -> list[Case]:
    x = np.ones((2, 4, 10), np.float32)
    nan, inf, huge = x.copy(), x.copy(), x.copy()
    nan[0, 0, 0], inf[0, 1, 2], huge[1, 1, 1] = np.nan, -np.inf, 1e30
    obj = np.empty((2, 4, 10), dtype=object)
    cases: list[Case] = _byte_cases(valid_npy, ".npy", cuts=(0.05, 0.2, 0.5, 0.99))
    cases += [
        ("object_array", _arr("obj", obj, pickled=True), "objects"),
        ("nan", _arr("nan", nan), "NaN"),
        ("inf", _arr("inf", inf), "NaN"),
        ("value_1e30", _arr("huge", huge), "exceeds"),
        ("complex", _arr("cplx", x.astype(np.complex64)), "dtype"),
        ("strings", _arr("str", np.array([["ab", "cd"]])), "dtype"),
        ("structured", _arr("rec", np.zeros((3, 4), dtype=[("a", "i4"), ("b", "f4")])), "dtype"),
        ("datetime", _arr("dt", np.array([[1, 2]], dtype="datetime64[s]")), "dtype"),
        ("void", _arr("void", np.zeros((2, 2), dtype="V4")), "dtype"),
        ("one_d", _arr("oned", np.ones(5)), "shape"),
        ("zero_d", _arr("zerod", np.float32(1.0)), "shape"),
        ("empty_array", _arr("emptyarr", np.zeros((0, 4, 10))), "empty"),
        ("npz_archive", lambda d: _npz("arch", x=x)(d), ".npz"),
        ("header_huge_shape", _header("bigshape", "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000, 4, 10), }"),
         "limit"),
        ("header_garbage", _header("garbage", "{'descr': oops}"), "readable"),
        ("header_object_descr", _header("objdescr", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"),
         "objects"),
        ("bad_version", _header("ver", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                                magic=b"\x93NUMPY\x09\x00"), "readable"),
        ("header_not_dict", _header("notdict", "[1, 2, 3]"), "readable"),
        ("short_data", _header("short", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", b"\0" * 8),
         "truncated"),
    ]
    return cases


def read_npy(path: Path):
    from ptsnn.cli.simulate_cmd import _load_array

    return _load_array(path)


# ============================================================================================== NIR
def _nir(change: Callable | None = None, name: str = "graph") -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        import nir

        d.mkdir(parents=True, exist_ok=True)
        w = np.arange(12, dtype=np.float64).reshape(3, 4) / 10
        nodes = {
            "in": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Affine(weight=w, bias=np.zeros(3)),
            "lif": nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                           v_reset=np.zeros(3)),
            "out": nir.Output(output_type={"output": np.array([3])}),
        }
        edges = [("in", "fc"), ("fc", "lif"), ("lif", "out")]
        if change is not None:
            change(nodes, edges)
        p = d / f"{name}.nir"
        nir.write(p, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
        return p
    return build


def valid_nir(folder: Path) -> Path:
    return _nir()(folder)


def _set(node: str, attr: str, value) -> Callable:
    def change(nodes, edges) -> None:
        setattr(nodes[node], attr, value)
    return change


def _nir_hdf5(name: str, mutate: Callable) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        import h5py

        p = valid_nir(d / "src")
        out = d / f"{name}.nir"
        out.write_bytes(p.read_bytes())
        with h5py.File(out, "a") as f:
            mutate(f)
        return out
    return build


def _nir_cases() -> list[Case]:
    import nir

    def add(nodes, edges, node, src="fc", dst="lif"):
        nodes["x"] = node
        edges.remove((src, dst))
        edges += [(src, "x"), ("x", dst)]

    nan_w = np.full((3, 4), np.nan)
    cases: list[Case] = _byte_cases(valid_nir, ".nir", cuts=(0.05, 0.3, 0.7))
    cases += [
        ("weight_nan", _nir(_set("fc", "weight", nan_w), "wnan"), "NaN"),
        ("weight_inf", _nir(_set("fc", "weight", np.full((3, 4), np.inf)), "winf"), "NaN"),
        ("weight_1e30", _nir(_set("fc", "weight", np.full((3, 4), 1e30)), "w30"), "exceeds"),
        ("bias_1e30", _nir(_set("fc", "bias", np.full(3, 1e30)), "b30"), "exceeds"),
        ("tau_nan", _nir(_set("lif", "tau", np.full(3, np.nan)), "taunan"), "NaN"),
        ("threshold_inf", _nir(_set("lif", "v_threshold", np.full(3, np.inf)), "vth"), "NaN"),
        ("r_1e30", _nir(_set("lif", "r", np.full(3, 1e30)), "r30"), "exceeds"),
        ("tau_negative", _nir(_set("lif", "tau", np.full(3, -1.0)), "tauneg"), "positive"),
        ("tau_zero", _nir(_set("lif", "tau", np.zeros(3)), "tau0"), "positive"),
        ("threshold_below_reset", _nir(_set("lif", "v_reset", np.full(3, 5.0)), "reset"), "threshold"),
        ("input_1e13", _nir(_set("in", "input_type", {"input": np.array([10**13])}), "in13"), "neurons"),
        ("input_negative", _nir(_set("in", "input_type", {"input": np.array([-4])}), "inneg"), None),
        ("unknown_node", _nir(lambda n, e: add(n, e, nir.Threshold(threshold=np.ones(3))), "thr"), "unsupported"),
        ("edge_missing_node", _nir(lambda n, e: e.append(("fc", "ghost")), "ghost"), "missing node"),
        ("loop", _nir(lambda n, e: e.append(("lif", "fc")), "loop"), None),
        ("weight_shape", _nir(_set("fc", "weight", np.ones((3, 7))), "wshape"), None),
        ("not_nir_hdf5", lambda d: _plain_hdf5(d), "cannot read"),
        ("dataset_100GB", _nir_hdf5("big", lambda f: f.create_dataset("node/nodes/fc/big", shape=(250_000, 50_000),
                                                                      dtype="f8", chunks=(1, 1000))), "limit"),
        ("weight_strings", _nir_hdf5("wstr", lambda f: (f.__delitem__("node/nodes/fc/weight"),
                                                        f.create_dataset("node/nodes/fc/weight", data=[b"x"] * 3))),
         None),
        ("delay_negative", _nir(lambda n, e: add(n, e, nir.Delay(delay=np.full(3, -0.5)), "fc", "lif"), "dneg"),
         None),
    ]
    return cases


def _plain_hdf5(d: Path) -> Path:
    import h5py

    d.mkdir(parents=True, exist_ok=True)
    with h5py.File(d / "plain.nir", "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    return d / "plain.nir"


def read_nir(path: Path):
    from ptsnn.convert.nir_import import import_nir

    return import_nir(path, dt=1e-3)


# ============================================================================================== hw profiles
def _profile_text() -> str:
    return resources.files("ptsnn.hw_profiles").joinpath("loihi2.toml").read_text(encoding="utf-8")


def valid_profile(folder: Path) -> Path:
    return _write(folder / "loihi2.toml", _profile_text())


def _profile(name: str, edit: Callable[[str], str]) -> Callable[[Path], Path]:
    return lambda d: _write(d / f"{name}.toml", edit(_profile_text()))


def _sub(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


def _profile_cases() -> list[Case]:
    p = _profile
    cases: list[Case] = _byte_cases(valid_profile, ".toml", cuts=(0.1, 0.5, 0.7))
    cases += [
        ("unknown_section", p("usec", lambda t: t + "\n[bogus]\nx = 1\n"), "unknown section"),
        ("unknown_field", p("ufield", _sub("[numerics]\n", "[numerics]\nwibble = 3\n")), "unknown field"),
        ("string_number", p("str", _sub("weight_bits = { value = 8,", 'weight_bits = { value = "8",')), "weight_bits"),
        ("float_for_int", p("flt", _sub("weight_bits = { value = 8,", "weight_bits = { value = 8.5,")), "weight_bits"),
        ("nan_value", p("nan", _sub("synaptic_op_pj = { value = 23.6,", "synaptic_op_pj = { value = nan,")), None),
        ("inf_value", p("inf", _sub("synaptic_op_pj = { value = 23.6,", "synaptic_op_pj = { value = inf,")), None),
        ("negative_cores", p("neg", _sub("cores_per_chip = { value = 128,", "cores_per_chip = { value = -1,")), None),
        ("zero_cores", p("zero", _sub("cores_per_chip = { value = 128,", "cores_per_chip = { value = 0,")), None),
        ("missing_section", p("miss", _sub("[timing]", "[timingx]")), None),
        ("bool_number", p("bool", _sub("weight_bits = { value = 8,", "weight_bits = { value = true,")), None),
        ("number_not_table", p("tbl", _sub("weight_bits = { value = 8, source", "weight_bits = 8\nxx = { source")),
         None),
        ("missing_source", p("src", _sub('weight_bits = { value = 8, source = "lava-nc 0.10 Dense: num_weight_bits <= 8,'
                                         ' signed mantissa incl. sign", proxy = false }', "weight_bits = { value = 8 }")),
         None),
        ("syntax_error", p("syn", lambda t: t + "\n= = =\n"), "syntax"),
        ("deep_nesting", p("deep", lambda t: t + "\n[extra]\nx = " + "[" * 5000 + "]" * 5000 + "\n"), "nested"),
        ("not_utf8", lambda d: _write(d / "latin.toml", _profile_text().encode("utf-8") + b"\n# \xff\xfe\n"), "UTF-8"),
        ("name_not_string", p("name", _sub('name = "loihi2"', "name = 7")), "name"),
        ("min_above_max", p("minmax", _sub("weight_exp = { min = -8, max = 7,", "weight_exp = { min = 9, max = 7,")),
         None),
        ("array_for_table", p("arr", _sub("[energy]", "energy = [1, 2]\n[energyx]")), None),
        ("huge_number", p("huge", _sub("cores_per_chip = { value = 128,",
                                       "cores_per_chip = { value = 99999999999999999999,")), None),
        ("directory", lambda d: (d / "dir.toml").mkdir(parents=True) or d / "dir.toml", "directory"),
    ]
    return cases


def read_profile(path: Path):
    from ptsnn.hw_profiles.loader import load_profile_file

    return load_profile_file(path)


# ============================================================================================== wav
SR = 16000


def _pcm_wav(bits: int = 16, channels: int = 1, rate: int = SR, tag: int = 1, frames: int = 4000,
             data: bytes | None = None, declared: int | None = None) -> bytes:
    width = max(1, (bits + 7) // 8)
    if data is None:
        t = np.arange(frames)
        x = (np.sin(t / 7.0) * 0.4 * (2 ** (8 * width - 1) - 1)).astype(np.int64)
        if width == 1:
            x = x + 128
        data = b"".join(int(v).to_bytes(width, "little", signed=width > 1) for v in np.repeat(x, channels))
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * width, channels * width, bits)
    size = len(data) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _float_wav(samples: np.ndarray, bits: int = 32) -> bytes:
    data = samples.astype("<f4" if bits == 32 else "<f8").tobytes()
    return _pcm_wav(bits=bits, tag=3, data=data)


def valid_wav(folder: Path) -> Path:
    return _write(folder / "ok.wav", _pcm_wav())


def _wav(name: str, blob: bytes) -> Callable[[Path], Path]:
    return lambda d: _write(d / f"{name}.wav", blob)


def _wav_cases() -> list[Case]:
    tone = (np.sin(np.arange(4000) / 7.0) * 0.5).astype(np.float64)
    cases: list[Case] = _byte_cases(valid_wav, ".wav", cuts=(0.01, 0.05, 0.5))
    cases += [
        ("bits_7", _wav("b7", _pcm_wav(bits=7)), "bits_per_sample = 7"),
        ("bits_12", _wav("b12", _pcm_wav(bits=12)), "bits_per_sample = 12"),
        ("bits_5", _wav("b5", _pcm_wav(bits=5)), "bits_per_sample = 5"),
        ("bits_0", _wav("b0", _pcm_wav(bits=0, data=b"\0" * 100)), None),
        ("float_bits_16", _wav("f16", _pcm_wav(bits=16, tag=3)), "bits_per_sample = 16"),
        ("float_1e30", _wav("f30", _float_wav(tone * 1e30)), "magnitude"),
        ("float_minus_1e30", _wav("fm30", _float_wav(-tone * 1e30)), "magnitude"),
        ("float_nan", _wav("fnan", _float_wav(np.where(np.arange(4000) == 10, np.nan, tone))), "NaN"),
        ("float_inf", _wav("finf", _float_wav(np.where(np.arange(4000) == 10, np.inf, tone))), None),
        ("double_1e300", _wav("d300", _float_wav(tone * 1e300, bits=64)), None),
        ("float_100", _wav("f100", _float_wav(tone * 200)), "magnitude"),
        ("channels_0", _wav("c0", _pcm_wav(channels=0, data=b"\0" * 100)), None),
        ("rate_0", _wav("r0", _pcm_wav(rate=0)), None),
        ("silent", _wav("silent", _pcm_wav(data=b"\0" * 8000)), "silent"),
        ("too_short", _wav("short", _pcm_wav(frames=100)), "too short"),
        ("declared_too_long", _wav("decl", _pcm_wav(declared=10**8)), "truncated"),
        ("riff_not_wave", _wav("avi", b"RIFF" + struct.pack("<I", 100) + b"AVI " + b"\0" * 100), None),
        ("text_file", _wav("text", b"this is not audio\n" * 20), None),
        ("header_only", _wav("hdr", _pcm_wav(data=b"")), None),
        ("bits_20", _wav("b20", _pcm_wav(bits=20)), "bits_per_sample = 20"),
        ("directory", lambda d: (d / "dir.wav").mkdir(parents=True) or d / "dir.wav", "not a file"),
    ]
    return cases


def read_wav(path: Path):
    from ptsnn.data.audio import load_audio

    return load_audio(path)


# ============================================================================================== manifests
def valid_manifest(folder: Path) -> Path:
    return _write(folder / "m.csv", "path,label,speaker,split\na.wav,happy,s1,train\nb.wav,sad,s2,test\n")


def _man(name: str, text: str | bytes) -> Callable[[Path], Path]:
    return lambda d: _write(d / name, text)


def _manifest_cases() -> list[Case]:
    big = "x" * 200_000
    deep = "[" * 10_000 + "]" * 10_000
    cases: list[Case] = _byte_cases(valid_manifest, ".csv", cuts=(0.1, 0.4))
    cases += [
        ("csv_field_over_limit", _man("big.csv", f"path,label\n\"{big}\",happy\n"), "malformed CSV"),
        ("csv_nul", _man("nul.csv", "path,label\na.wav\x00,happy\n"), "NUL"),
        ("csv_no_label", _man("nolabel.csv", "path,speaker\na.wav,s1\n"), "'label'"),
        ("csv_empty_label", _man("elabel.csv", "path,label\na.wav,\n"), "empty label"),
        ("csv_only_header", _man("hdr.csv", "path,label\n"), "no utterances"),
        ("csv_bad_split", _man("split.csv", "path,label,split\na.wav,happy,holdout\n"), "split"),
        ("csv_fold_negative", _man("fold.csv", "path,label,fold\na.wav,happy,-1\n"), "fold"),
        ("csv_fold_fraction", _man("fold2.csv", "path,label,fold\na.wav,happy,1.5\n"), "fold"),
        ("csv_fold_inf", _man("fold3.csv", "path,label,fold\na.wav,happy,inf\n"), "fold"),
        ("csv_long_path", _man("long.csv", f"path,label\n{'p' * 5000}.wav,happy\n"), "path"),
        ("not_utf8", _man("latin.csv", b"path,label\na\xff.wav,happy\n"), "UTF-8"),
        ("json_deep", _man("deep.json", deep), "nested"),
        ("json_nan", _man("nan.json", '[{"path": "a.wav", "label": NaN}]'), "JSON"),
        ("json_list_of_ints", _man("ints.json", "[1, 2, 3]"), "not an object"),
        ("json_path_object", _man("pobj.json", '[{"path": {"a": 1}, "label": "happy"}]'), "path"),
        ("json_label_list", _man("llist.json", '[{"path": "a.wav", "label": ["happy"]}]'), "label"),
        ("json_scalar", _man("scalar.json", "42"), "expected a list"),
        ("json_classes_bad", _man("cls.json", '{"classes": "happy", "utterances": []}'), "classes"),
        ("json_syntax", _man("syn.json", '[{"path": "a.wav",'), "JSON"),
        ("jsonl_bad_line", _man("bad.jsonl", '{"path": "a.wav", "label": "happy"}\n{oops\n'), "line 2"),
        ("jsonl_deep", _man("deep.jsonl", deep + "\n"), "nested"),
        ("unknown_suffix", _man("m.xml", "<m/>"), "unknown manifest format"),
        ("json_bool_label", _man("bool.json", '[{"path": "a.wav", "label": true}]'), "label"),
    ]
    return cases


def read_manifest(path: Path):
    from ptsnn.data.manifest import load_manifest

    return load_manifest(path, check_files=False)


# ============================================================================================== configs
def valid_config(folder: Path) -> Path:
    return _write(folder / "cfg.toml", "[model]\nhidden = 16\nblocks = 1\n[train]\nepochs = 1\nlr = 0.001\n")


def _cfg(name: str, text: str | bytes) -> Callable[[Path], Path]:
    return lambda d: _write(d / name, text)


def _config_cases() -> list[Case]:
    c = _cfg
    # (an empty config file is valid: the preset unchanged)
    cases: list[Case] = [c for c in _byte_cases(valid_config, ".toml", cuts=(0.3, 0.6)) if c[0] != "empty"]
    cases += [
        ("hidden_1e9", c("h.toml", "[model]\nhidden = 1000000000\n"), "model.hidden"),
        ("blocks_1e6", c("b.toml", "[model]\nblocks = 1000000\n"), "model.blocks"),
        ("steps_per_frame_1e6", c("s.toml", "[model]\nsteps_per_frame = 1000000\n"), "steps_per_frame"),
        ("hidden_string", c("hs.toml", '[model]\nhidden = "128"\n'), "model.hidden"),
        ("hidden_float", c("hf.toml", "[model]\nhidden = 128.0\n"), "model.hidden"),
        ("hidden_bool", c("hb.toml", "[model]\nhidden = true\n"), "model.hidden"),
        ("lr_nan", c("lrn.toml", "[train]\nlr = nan\n"), "train.lr"),
        ("lr_inf", c("lri.toml", "[train]\nlr = inf\n"), "train.lr"),
        ("lr_negative", c("lr.toml", "[train]\nlr = -0.1\n"), "train.lr"),
        ("batch_zero", c("bs.toml", "[train]\nbatch_size = 0\n"), "train.batch_size"),
        ("dropout_2", c("do.toml", "[model]\ndropout = 2\n"), "model.dropout"),
        ("epochs_negative", c("ep.toml", "[train]\nepochs = -1\n"), "train.epochs"),
        ("seed_negative", c("seed.toml", "[train]\nseed = -5\n"), "train.seed"),
        ("input_bits_9", c("ib.toml", "[model]\ninput_bits = 9\n"), "input_bits"),
        ("tau_1", c("tau.toml", "[model]\ntau_init = 1.0\n"), "tau_init"),
        ("unknown_section", c("sec.toml", "[optimizer]\nname = 'adam'\n"), "unknown section"),
        ("unknown_field", c("fld.toml", "[model]\nhiden = 64\n"), "unknown field"),
        ("surrogate_unknown", c("sur.toml", '[model]\nsurrogate = "relu"\n'), "surrogate"),
        ("frontend_unknown", c("fe.toml", '[frontend]\nkind = "mfcc"\n'), "frontend.kind"),
        ("base_unknown", c("base.toml", 'base = "huge"\n'), "unknown config"),
        ("model_array", c("arr.toml", "model = [1, 2]\n"), "[model]"),
        ("deep_toml", c("deep.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n"), "nested"),
        ("deep_json", c("deep.json", "[" * 10_000 + "]" * 10_000), "nested"),
        ("json_nan", c("nan.json", '{"train": {"lr": NaN}}'), "JSON"),
        ("json_list", c("list.json", "[1, 2]"), "expected a table"),
        ("not_utf8", c("latin.toml", b"[model]\n# \xff\n"), "UTF-8"),
        ("too_many_parameters", c("params.toml", "[model]\nhidden = 65536\n"), "parameters"),
        ("steps_over_limit", c("steps.toml", "[model]\nsteps_per_frame = 256\n[train]\nmax_frames = 1000000\n"),
         "chip steps"),
        ("syntax_error", c("syn.toml", "[model\nhidden = 3\n"), "syntax"),
        ("name_too_long", c("name.toml", f'name = "{"n" * 500}"\n'), "name"),
        ("prompts_zero", c("pr.toml", "[model]\nprompts = 0\n"), "model.prompts"),
    ]
    return cases


def read_config(path: Path):
    from ptsnn.train.config import load_config

    return load_config(str(path))


# ============================================================================================== registry
CASES: dict[str, list[Case]] = {}
_BUILDERS = {
    "checkpoint": _checkpoint_cases, "calibration": _calibration_cases, "netx": _netx_cases, "npy": _npy_cases,
    "nir": _nir_cases, "profile": _profile_cases, "wav": _wav_cases, "manifest": _manifest_cases,
    "config": _config_cases,
}
VALID = {"checkpoint": valid_checkpoint, "calibration": valid_calibration, "netx": valid_netx, "npy": valid_npy,
         "nir": valid_nir, "profile": valid_profile, "wav": valid_wav, "manifest": valid_manifest,
         "config": valid_config}
READ = {"checkpoint": read_checkpoint, "calibration": read_calibration, "netx": read_netx, "npy": read_npy,
        "nir": read_nir, "profile": read_profile, "wav": read_wav, "manifest": read_manifest,
        "config": read_config}


def cases(reader: str) -> list[Case]:
    if reader not in CASES:
        CASES[reader] = _BUILDERS[reader]()
    return CASES[reader]


def all_case_ids() -> list[tuple[str, str]]:
    return [(reader, name) for reader in _BUILDERS for name, _, _ in cases(reader)]

