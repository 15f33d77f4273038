"""Bad bundles given to `ptsnn run`, `report` and `verify`: each a one-line error, exit 2, nothing left behind.

One small bundle is built per module; every case copies it, damages the copy in one way (re-hashing the
manifest where the damage should get past the sha256 check) and runs the three commands in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from ptsnn.errors import InputError

OUTSIDE_SECRET = "outside the bundle\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    import soundfile as sf

    from ptsnn.data.synthetic import SyntheticCorpusConfig, generate_utterance
    from ptsnn.testing import synthetic_bundle

    root = tmp_path_factory.mktemp("hardening")
    bundle = synthetic_bundle(root, max_samples=8000)
    wav = root / "u.wav"
    sf.write(wav, generate_utterance(SyntheticCorpusConfig(), 0, "angry", 0)[:8000], 16000)
    (root / "secret.txt").write_text(OUTSIDE_SECRET)
    return root, bundle, wav


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(b: Path) -> dict:
    return json.loads((b / "manifest.json").read_text())


def _write_manifest(b: Path, m) -> None:
    (b / "manifest.json").write_text(json.dumps(m))


def _edit(b: Path, fn, rehash: bool = True) -> None:
    m = _manifest(b)
    fn(m)
    if rehash:
        for rel in m["files"]:
            f = b / rel
            if f.is_file():
                m["files"][rel] = _sha(f)
    _write_manifest(b, m)


def _rehash(b: Path) -> None:
    _edit(b, lambda m: None)


def _edit_graph(b: Path, fn) -> None:
    g = json.loads((b / "chip_graph.json").read_text())
    fn(g)
    (b / "chip_graph.json").write_text(json.dumps(g))
    _rehash(b)


def _set(path: list, value):
    def fn(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return fn


def _outside_entry(rel: str):
    def damage(b: Path, root: Path):
        _edit(b, lambda m: m["files"].__setitem__(rel, _sha(root / "secret.txt")), rehash=False)
    return damage


def _symlinked_onnx(b: Path, root: Path):
    (b / "host.onnx").unlink()
    os.symlink(root / "secret.txt", b / "host.onnx")
    _rehash(b)


def _symlinked_netx_dir(b: Path, root: Path):
    outside = root / f"netx-outside-{os.getpid()}-{len(list(root.iterdir()))}"
    shutil.move(b / "netx", outside)
    os.symlink(outside, b / "netx")


def _fifo(b: Path, root: Path):
    os.mkfifo(b / "pipe")


def _truncate(rel: str, keep: int):
    def damage(b: Path, root: Path):
        data = (b / rel).read_bytes()
        (b / rel).write_bytes(data[:keep])
        _rehash(b)
    return damage


def _random_bytes(rel: str):
    def damage(b: Path, root: Path):
        (b / rel).write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        _rehash(b)
    return damage


def _text(content: bytes):
    def damage(b: Path, root: Path):
        (b / "manifest.json").write_bytes(content)
    return damage


def _manifest_edit(fn, rehash=False):
    return lambda b, root: _edit(b, fn, rehash)


def _graph_edit(fn):
    return lambda b, root: _edit_graph(b, fn)


def _both_flush(value):
    def damage(b: Path, root: Path):
        g = json.loads((b / "chip_graph.json").read_text())
        g["flush_steps"] = value
        (b / "chip_graph.json").write_text(json.dumps(g))
        _edit(b, _set(["timing", "flush_steps"], value))
    return damage


def _pop_file(rel, delete=False):
    def damage(b: Path, root: Path):
        if delete:
            (b / rel).unlink()
        _edit(b, lambda m: m["files"].pop(rel), rehash=False)
    return damage


def _modify_unhashed(rel):
    def damage(b: Path, root: Path):
        with open(b / rel, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0xFF]))
    return damage


CASES = {
    "manifest not UTF-8": (_text(b'{"format": "\xff\xfe"}'), "not UTF-8"),
    "manifest a list": (_text(b"[1, 2, 3]"), "must be a JSON object"),
    "manifest truncated": (lambda b, r: (b / "manifest.json").write_text((b / "manifest.json").read_text()[:200]),
                           "not valid JSON"),
    "manifest nested too deeply": (_text(b"[" * 200_000 + b"]" * 200_000), "nested too deeply"),
    "manifest too large": (_text(b"{" + b" " * (5 << 20) + b"}"), "more than a manifest"),
    "manifest missing": (lambda b, r: (b / "manifest.json").unlink(), "no manifest.json"),
    "manifest is a folder": (lambda b, r: ((b / "manifest.json").unlink(), (b / "manifest.json").mkdir()),
                             "no manifest.json"),
    "absolute path": (_outside_entry("/etc/passwd"), "is absolute"),
    "dot-dot path": (_outside_entry("../../../../etc/passwd"), "leaves the bundle"),
    "dot-dot to sibling": (_outside_entry("../secret.txt"), "leaves the bundle"),
    "hidden dot-dot": (_outside_entry("netx/../../secret.txt"), "leaves the bundle"),
    "backslash path": (_outside_entry("..\\secret.txt"), "not a plain relative path"),
    "symlinked file out": (_symlinked_onnx, "symbolic link"),
    "symlinked folder out": (_symlinked_netx_dir, "symbolic link"),
    "unknown file": (lambda b, r: (b / "extra.bin").write_bytes(b"x"), "not listed in manifest.json"),
    "fifo in bundle": (_fifo, "not a regular file"),
    "unknown top-level field": (_manifest_edit(_set(["surprise"], 1)), "surprise: unknown field"),
    "unknown nested field": (_manifest_edit(_set(["timing", "speed"], 2)), "timing.speed: unknown field"),
    "flush_steps a string": (_manifest_edit(_set(["timing", "flush_steps"], "13")), "timing.flush_steps"),
    "flush_steps negative": (_manifest_edit(_set(["timing", "flush_steps"], -1)), "timing.flush_steps"),
    "flush_steps 1e9 float": (_manifest_edit(_set(["timing", "flush_steps"], 1e9)), "timing.flush_steps"),
    "flush_steps above the graph latency": (_both_flush(1000), "flush_steps: 1000 outside 0..13"),
    "flush_steps 1e9 in graph and manifest": (_both_flush(10**9), "flush_steps"),
    "flush_steps negative in graph": (_graph_edit(_set(["flush_steps"], -5)), "flush_steps"),
    "graph says other flush": (_graph_edit(_set(["flush_steps"], 3)), "timing.flush_steps: 13 but the chip graph"),
    "graph size a string": (_graph_edit(lambda g: g["populations"][0].__setitem__("size", "128")), "chip_graph"),
    "graph not JSON": (lambda b, r: ((b / "chip_graph.json").write_text("{nope"), _rehash(b)), "chip_graph"),
    "graph a list": (lambda b, r: ((b / "chip_graph.json").write_text("[]"), _rehash(b)), "chip_graph"),
    "graph missing populations": (_graph_edit(lambda g: g.pop("populations")), "chip_graph"),
    "graph h5 truncated": (_truncate("chip_graph.h5", 3000), "chip_graph"),
    "graph h5 random bytes": (_random_bytes("chip_graph.h5"), "chip_graph"),
    "graph h5 bit flipped, not re-hashed": (_modify_unhashed("chip_graph.h5"), "does not match its sha256"),
    "onnx modified, not re-hashed": (_modify_unhashed("host.onnx"), "does not match its sha256"),
    "listed file missing": (lambda b, r: (b / "host.onnx").unlink(), "listed in the manifest is missing"),
    "chip graph not listed": (_pop_file("chip_graph.h5"), "chip_graph.h5 is not listed"),
    "netx file unlisted": (_pop_file("netx/chip_prefix.net", delete=True), "netx.file"),
    "netx layers not the chain": (_manifest_edit(_set(["netx", "layers"], ["readout"])), "netx.layers"),
    "classes wrong length": (_manifest_edit(_set(["classes"], ["a", "b", "c"])), "3 names for a readout of 4"),
    "classes repeat": (_manifest_edit(_set(["classes"], ["a", "a", "b", "c"])), "class names repeat"),
    "class a number": (_manifest_edit(_set(["classes"], [1, 2, 3, 4])), "classes.0"),
    "format wrong": (_manifest_edit(_set(["format"], "zip")), "format"),
    "format version 2": (_manifest_edit(_set(["format_version"], 2)), "format_version"),
    "sha256 not hex": (_manifest_edit(lambda m: m["files"].__setitem__("host.onnx", "zz")), "files.host.onnx"),
    "frontend nested": (_manifest_edit(_set(["frontend", "n_mels"], {"a": 1})), "frontend.n_mels"),
    "message bits 99": (_manifest_edit(_set(["netx", "input_message_bits"], 99)), "netx.input_message_bits"),
    "onnx random bytes": (_random_bytes("host.onnx"), "host.onnx: not a loadable ONNX model"),
    "onnx truncated": (_truncate("host.onnx", 5000), "host.onnx: not a loadable ONNX model"),
    "onnx removed": (_pop_file("host.onnx", delete=True), "no host.onnx"),
}


def _cli(args: list[str], capsys, stdout: bool = False):
    from ptsnn.cli._app import run_app
    from ptsnn.cli.main import app

    old_argv, old_term = sys.argv, signal.getsignal(signal.SIGTERM)
    sys.argv = ["ptsnn", *args]
    try:
        with pytest.raises(SystemExit) as exc:
            run_app(app, "ptsnn")
    finally:
        sys.argv = old_argv
        signal.signal(signal.SIGTERM, old_term)
    out = capsys.readouterr()
    return (int(exc.value.code or 0), out.out, out.err) if stdout else (int(exc.value.code or 0), out.err)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_bundle_is_one_line_exit_2_for_run_report_verify(made, tmp_path, capsys, case):
    root, bundle, wav = made
    damage, expected = CASES[case]
    b = tmp_path / "bundle"
    shutil.copytree(bundle, b, symlinks=True)
    damage(b, root)
    before = _listing(b) if b.is_dir() else None
    commands = {
        "run": ["run", str(b), str(wav), "--backend", "fast"],
        "report": ["report", str(b), "--out", str(tmp_path / "rep"), "--limit", "1", "--max-frames", "20"],
        "verify": ["verify", str(b), "--checkpoint", str(root / "m.pt"), "--limit", "1", "--lava", "0",
                   "--max-frames", "20"],
    }
    for name, args in commands.items():
        code, err = _cli(args, capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, (name, err)
        assert expected in lines[0], (name, lines[0])
        assert not (tmp_path / "rep").exists(), name
        assert (_listing(b) if b.is_dir() else None) == before, name  # nothing written into the bundle
    assert (root / "secret.txt").read_text() == OUTSIDE_SECRET


def test_corpus_is_large_enough():
    assert len(CASES) >= 25


def test_bundle_path_that_is_a_file(made):
    from ptsnn.deploy.bundle_io import load_bundle

    root, _, _ = made
    with pytest.raises(InputError, match="not a folder"):
        load_bundle(root / "secret.txt")


def test_intact_bundle_loads_and_its_manifest_is_typed(made):
    from ptsnn.deploy.bundle_io import graph_latency, load_bundle

    _, bundle, _ = made
    b = load_bundle(bundle)
    assert b.spec.timing.flush_steps == b.flush_steps == graph_latency(b.graph) > 0
    assert len(b.classes) == b.graph.accumulators[0].size


def test_verify_without_lava_does_not_claim_lava(made, capsys):
    root, bundle, _ = made
    code, out, err = _cli(["verify", str(bundle), "--checkpoint", str(root / "m.pt"), "--limit", "2", "--lava", "0",
                           "--max-frames", "20"], capsys, stdout=True)
    text = " ".join(out.split())
    assert code == 0, err
    assert "OK: quantized PyTorch == fast simulator, spike for spike in every layer (Lava not run)" in text
    assert "== Lava" not in text


def test_verify_refuses_a_checkpoint_the_bundle_was_not_converted_from(made, capsys, tmp_path):
    _, bundle, _ = made
    other = tmp_path / "other.pt"
    other.write_bytes(b"not this bundle's checkpoint")
    for ckpt, message in ((other, "not the checkpoint this bundle was converted from"),
                          (tmp_path / "missing.pt", "no such checkpoint file")):
        code, err = _cli(["verify", str(bundle), "--checkpoint", str(ckpt), "--lava", "0"], capsys)
        assert code != 0 and message in " ".join(err.split()) and "Traceback" not in err


def test_verify_ok_line_names_lava_only_when_it_ran():
    from ptsnn.cli.deploy_cmd import verified_claim
    from ptsnn.deploy.verify import Overflow, VerifyReport

    none = VerifyReport([], {}, [], host_payload_mismatches=0, lava_utterances=0)
    assert "Lava" in verified_claim(none) and "== Lava" not in verified_claim(none)
    assert "Lava not run" in verified_claim(none) and "host.onnx payloads" in verified_claim(none)
    two = VerifyReport([], {}, [], host_payload_mismatches=3, lava_utterances=2)
    assert "== Lava (2 utterance(s))" in verified_claim(two) and "host.onnx" not in verified_claim(two)
    over = VerifyReport([], {}, [], 0, 0, [Overflow("enc.0", "u", 5, 3, "current", 2**23 + 1)])
    assert "overflow" not in verified_claim(over)
