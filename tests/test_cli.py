"""The installed console scripts: help, one-line errors, exit codes."""

import subprocess

import torch


def _run(cmd, *args, timeout=120):
    return subprocess.run([cmd, *args], capture_output=True, text=True, timeout=timeout)


def test_ptsnn_help_lists_the_verbs(entry_point):
    r = _run(entry_point("ptsnn"), "--help")
    assert r.returncode == 0
    for verb in ("smoke", "profiles", "info"):
        assert verb in r.stdout


def test_ptsnn_convert_help(entry_point):
    r = _run(entry_point("ptsnn-convert"), "--help")
    assert r.returncode == 0 and "--target" in r.stdout and "--emit" in r.stdout


def test_profiles_listing_from_entry_point(entry_point):
    r = _run(entry_point("ptsnn"), "profiles")
    assert r.returncode == 0
    for name in ("loihi2", "loihi1", "cmos45nm", "xylo_audio2"):
        assert name in r.stdout


def test_convert_bad_inputs_are_one_line_errors(entry_point, tmp_path):
    convert = entry_point("ptsnn-convert")
    r = _run(convert, str(tmp_path / "missing.pt"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    r = _run(convert, str(bad))
    assert r.returncode == 2 and "bad.pt" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _run(convert, str(bad), "--target", "no_such_chip")
    assert r.returncode == 2 and "no_such_chip" in r.stderr
    r = _run(convert, str(bad), "--emit", "netx,bogus")
    assert r.returncode == 2 and "bogus" in r.stderr


def test_convert_refuses_code_carrying_pickles(entry_point, tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    r = _run(entry_point("ptsnn-convert"), str(path))
    assert r.returncode == 2 and "owned" not in r.stdout and "refused" in r.stderr
    assert list(tmp_path.iterdir()) == [path]
