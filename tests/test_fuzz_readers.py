"""Bounded fuzzing of every reader: hypothesis mutates the bytes of a valid file of each kind (bit flips, byte
overwrites, cuts, insertions, deleted ranges) and, for the structured readers, generates whole documents; the
reader must either accept the result or raise a one-line PtsnnError, never another exception or a hang.

``PTSNN_FUZZ_EXAMPLES`` sets the examples per reader (default 20: a few seconds each in the default run);
``make fuzz`` raises it (see docs/security.md for the figures of such a run)."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import hostile_corpus as corpus  # noqa: E402

from ptsnn.errors import PtsnnError  # noqa: E402

EXAMPLES = int(os.environ.get("PTSNN_FUZZ_EXAMPLES", "20"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="PTSNN_FUZZ_RANDOM" not in os.environ,
                database=None, suppress_health_check=list(HealthCheck))
EXECUTIONS: dict[str, int] = {}
_VALID: dict[str, bytes] = {}
SUFFIX = {"checkpoint": ".pt", "calibration": ".npz", "netx": ".net", "npy": ".npy", "nir": ".nir",
          "profile": ".toml", "wav": ".wav", "manifest": ".csv", "config": ".toml"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def valid_bytes(reader: str, workdir: Path) -> bytes:
    if reader not in _VALID:
        _VALID[reader] = corpus.VALID[reader](workdir / f"valid-{reader}").read_bytes()
    return _VALID[reader]


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**31), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 2**31), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 2**31), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 2**31), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 2**31), st.integers(1, 64)),
)


def mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, arg in ops:
        if not b:
            break
        i = pos % len(b)
        if op == "flip":
            b[i] ^= 1 << arg
        elif op == "set":
            b[i] = arg
        elif op == "cut":
            del b[i:]
        elif op == "insert":
            b[i:i] = bytes([arg]) * (1 + pos % 17)
        else:
            del b[i:i + arg]
    return bytes(b)


def check(reader: str, path: Path) -> None:
    EXECUTIONS[reader] = EXECUTIONS.get(reader, 0) + 1
    try:
        corpus.READ[reader](path)
    except PtsnnError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, msg
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("reader", list(corpus.VALID))
def test_fuzz_bytes(reader, workdir):
    data = valid_bytes(reader, workdir)

    @FUZZ
    @given(ops=st.lists(mutation, min_size=1, max_size=6))
    def run(ops):
        check(reader, _write(workdir / f"fuzz-{reader}{SUFFIX[reader]}", mutate(data, ops)))

    run()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_fuzz_checkpoint_records(workdir):
    """Mutations inside the checkpoint's records, re-zipped with correct CRCs: the pickle and the tensor data
    reach torch's weights-only unpickler and the validation after it."""
    data = valid_bytes("checkpoint", workdir)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        records = {i.filename: zf.read(i) for i in zf.infolist()}
    names = sorted(records)

    @FUZZ
    @given(which=st.integers(0, len(names) - 1), ops=st.lists(mutation, min_size=1, max_size=4))
    def run(which, ops):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as out:
            for n in names:
                out.writestr(n, mutate(records[n], ops) if n == names[which] else records[n])
        check("checkpoint", _write(workdir / "rezip.pt", buf.getvalue()))

    run()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
config_keys = st.sampled_from(["hidden", "blocks", "lr", "batch_size", "dropout", "steps_per_frame", "kind",
                               "epochs", "surrogate", "xi", "prompts", "seed", "bogus"])


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(["model", "train", "frontend", "name", "base", "other"]),
                           st.dictionaries(config_keys, json_values, max_size=4) | json_values, max_size=4))
def test_fuzz_config_documents(doc, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "cfg.json"
    path.write_text(json.dumps(doc))
    check("config", path)


@FUZZ
@given(rows=st.lists(st.dictionaries(st.sampled_from(["path", "label", "speaker", "split", "fold", "utt_id", "x"]),
                                     json_values, max_size=6), max_size=4))
def test_fuzz_manifest_documents(rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("man") / "m.json"
    path.write_text(json.dumps(rows))
    check("manifest", path)


def test_zz_report_executions(capsys):
    with capsys.disabled():
        print(f"\nfuzz executions per reader ({EXAMPLES} examples per test): {dict(sorted(EXECUTIONS.items()))}")
