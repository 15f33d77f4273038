"""ptsnn.compat makes lava-nc / lava-dl import on Python 3.11 without touching installed files."""

import subprocess
import sys

import pytest

from ptsnn import compat


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)


def test_lava_compiler_fails_without_compat_on_311():
    if sys.version_info < (3, 11):
        pytest.skip("the dataclass problem only exists on Python >= 3.11")
    r = _run("import lava.magma.compiler.var_model")
    assert r.returncode != 0 and "mutable default" in r.stderr


def test_lava_and_netx_import_with_compat():
    r = _run("from ptsnn import compat; compat.import_lava(); import lava.lib.dl.slayer as s; print(s.neuron.cuba.Neuron.__name__)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Neuron"


def test_var_model_defaults_keep_python310_semantics():
    compat.apply()
    from lava.magma.compiler.var_model import ByteEncoder, CoreEncoder

    a, b = CoreEncoder(), CoreEncoder()
    assert a.x == ByteEncoder(0, 0, 0)
    assert a.x is b.x  # the shared default instance, as on Python 3.10
    hash(ByteEncoder())  # hashable now


def test_object_detection_placeholder_explains_itself():
    compat.apply()
    import lava.lib.dl.slayer as slayer

    with pytest.raises(ImportError, match="torchvision and OpenCV"):
        slayer.obd.yolo_base  # noqa: B018


def test_apply_is_idempotent_and_removable():
    compat.apply()
    compat.apply()
    assert sum(f is compat._FINDER for f in sys.meta_path) == 1
    compat.remove()
    assert compat._FINDER not in sys.meta_path
    compat.apply()


def test_lava_imports_after_a_start_method_was_chosen():
    code = ("import multiprocessing as mp; mp.set_start_method('spawn'); "
            "from ptsnn import compat; compat.apply(); import lava.proc.lif.models; "
            "print(mp.get_start_method())")
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "fork"  # Lava's runtime needs fork; it is forced, not refused
