"""Hardware profiles: built-ins, validation errors (one line: file, dotted field, problem), CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ptsnn.cli._app import run_app
from ptsnn.cli.profiles_cmd import profiles_app
from ptsnn.errors import ProfileError
from ptsnn.hw_profiles import (
    HardwareProfile,
    Quantity,
    Range,
    list_profiles,
    load_profile,
    parse_profile,
    unit_of,
)

BUILTINS = ["cmos45nm", "loihi1", "loihi2", "xylo_audio2"]

GOOD = """\
[profile]
name = "my_chip"
vendor = "ACME"
description = "a test chip"
kind = "neuromorphic"
nir_reachable = false

[numerics]
float_arithmetic = false
decay_mode = "multiplicative"
weight_bits = { value = 8, source = "datasheet", proxy = false }
weight_exp = { min = -8, max = 7, source = "datasheet", proxy = true }
voltage_bits = { value = 24, source = "datasheet", proxy = false }
decay_bits = { value = 12, source = "datasheet", proxy = false }
decay_max = { value = 4095, source = "datasheet", proxy = false }
delay_bits = { value = 4, source = "datasheet", proxy = false }

[structure]
chips = { value = 1, source = "datasheet", proxy = false }
cores_per_chip = { value = 4, source = "datasheet", proxy = false }
neurons_per_core = { value = 256, source = "datasheet", proxy = false }
max_delay_steps = { value = 10, source = "datasheet", proxy = false }

[timing]
time_step_us = { value = 5.0, source = "guess", proxy = true }

[energy]
synaptic_op_pj = { value = 10.0, source = "datasheet table 3", proxy = false }
neuron_update_pj = { value = 50.0, source = "datasheet", proxy = false }
neuron_idle_pj = { value = 20.0, source = "datasheet", proxy = false }
"""


def _write(tmp_path: Path, text: str, name: str = "my.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _mutate(old: str, new: str) -> str:
    assert old in GOOD, f"test bug: {old!r} not in GOOD"
    return GOOD.replace(old, new, 1)


def _profile_error(path: Path | str) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- built-in profiles -------------------------------------------------------------------------------------


def test_list_profiles_finds_the_package_tomls():
    assert list_profiles() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_with_sources(name):
    p = load_profile(name)
    assert isinstance(p, HardwareProfile)
    assert p.name == name  # the file's [profile].name matches its file name
    numbers = list(p.numbers())
    assert len(numbers) >= 6
    for path, item in numbers:
        assert item.source.strip(), path
        assert isinstance(item.proxy, bool), path
    assert p.profile.vendor and p.profile.description
    if p.profile.kind == "neuromorphic":
        assert p.value("structure.neurons_per_core") > 0 and p.total_cores > 0
        assert p.energy.synaptic_op_pj is not None and p.energy.neuron_update_pj is not None
    else:
        assert p.energy.mac_pj is not None and p.energy.ac_pj is not None
    assert load_profile(name) is p  # built-ins are cached (frozen, so sharing is safe)
    assert load_profile(p) is p  # stages may pass a loaded profile through


def test_loihi1_energy_is_published_and_loihi2_borrows_it_as_proxy():
    l1, l2 = load_profile("loihi1"), load_profile("loihi2")
    assert l1.energy.synaptic_op_pj.value == pytest.approx(23.6)
    assert l1.energy.synaptic_op_pj.proxy is False
    assert "Davies" in l1.energy.synaptic_op_pj.source
    assert l2.energy.synaptic_op_pj.value == pytest.approx(23.6)
    assert l2.energy.synaptic_op_pj.proxy is True
    expected = {"neuron_update_pj": 81.0, "neuron_idle_pj": 52.0, "spike_tile_pj": 1.7, "spike_hop_pj": 3.5}
    for field, value in expected.items():
        assert l1.value(f"energy.{field}") == pytest.approx(value)
        assert l2.value(f"energy.{field}") == pytest.approx(value)
    # Loihi 2 has no published per-op energy: every energy figure must be flagged.
    assert all(path in l2.proxies() for path, _ in l2.numbers() if path.startswith("energy."))


def test_loihi_numerics_and_structure():
    l1, l2 = load_profile("loihi1"), load_profile("loihi2")
    n = l2.numerics
    assert (n.weight_bits.value, n.current_bits.value, n.voltage_bits.value) == (8, 24, 24)
    assert (n.decay_bits.value, n.decay_max.value, n.decay_mode) == (12, 4095, "multiplicative")
    assert (n.bias_bits.value, n.bias_exp.min, n.bias_exp.max) == (13, 6, 6)  # netx fixes bias_exp = 6
    assert (n.threshold_bits.value, n.threshold_exp.min) == (17, 6)
    assert n.graded_spike_bits.value == 24 and l1.numerics.graded_spike_bits.value == 0
    assert l2.value("structure.max_delay_steps") == 62
    assert l2.profile.lava_target == "loihi2" and l1.profile.lava_target is None
    assert l2.total_cores == 128 and l2.value("structure.neurons_per_core") == 8192
    assert l2.value("structure.synapse_memory_bytes_per_core") == 192 * 1024
    assert l1.value("structure.neurons_per_core") == 1024
    assert l1.value("structure.max_fan_in_per_core") == 4096
    assert l1.value("structure.synapse_memory_bytes_per_core") == 128 * 1024
    assert l2.value("structure.max_fan_in_per_core") is None  # not published = not limited


def test_cmos45nm_is_a_float_estimate_without_limits():
    p = load_profile("cmos45nm")
    assert p.profile.kind == "estimate" and p.numerics.float_arithmetic is True
    e = p.energy
    figures = {"mac_pj": 4.6, "ac_pj": 0.9, "int8_add_pj": 0.03, "int8_mult_pj": 0.2,
               "int32_add_pj": 0.1, "int32_mult_pj": 3.1}  # fmt: skip
    for field, value in figures.items():
        item = getattr(e, field)
        assert item.value == pytest.approx(value) and item.proxy is False and "Horowitz" in item.source
    assert all(getattr(p.structure, f) is None for f in type(p.structure).model_fields)
    assert p.total_cores is None and p.value("structure.neurons_per_core") is None
    assert p.proxies() == []


def test_xylo_audio2():
    p = load_profile("xylo_audio2")
    s = p.structure
    assert (s.input_channels.value, s.neurons_per_core.value, s.output_neurons.value) == (16, 1000, 8)
    assert s.max_fan_out_per_neuron.value == 64 and s.max_delay_steps.value == 0
    assert p.numerics.weight_bits.value == 8 and p.numerics.decay_mode == "bitshift"
    assert p.energy.inference_uj.value == pytest.approx(6.6) and p.energy.inference_uj.proxy is False
    assert p.energy.synaptic_op_pj.proxy is True  # no per-op figure published
    assert p.profile.nir_reachable is True and p.profile.lava_target is None


def test_accessors_and_units():
    p = load_profile("loihi2")
    assert isinstance(p.get("energy.synaptic_op_pj"), Quantity)
    assert isinstance(p.get("numerics.weight_exp"), Range)
    with pytest.raises(KeyError):
        p.get("energy.nope_pj")
    with pytest.raises(KeyError):
        p.value("numerics.weight_exp")  # a range has no single value
    assert unit_of("synaptic_op_pj") == "pJ"
    assert unit_of("structure.synapse_memory_bytes_per_core") == "bytes"
    assert unit_of("time_step_us") == "us" and unit_of("neurons_per_core") == "count"
    rows = {r["path"]: r for r in p.summary_rows()}
    assert rows["energy.synaptic_op_pj"]["unit"] == "pJ" and rows["energy.synaptic_op_pj"]["proxy"] is True
    assert rows["numerics.weight_exp"]["value"] == "-8..7"


# -- user profiles and errors ------------------------------------------------------------------------------


def test_user_profile_by_path(tmp_path, monkeypatch):
    path = _write(tmp_path, GOOD)
    for ref in (path, str(path)):
        p = load_profile(ref)
        assert p.name == "my_chip" and p.value("energy.synaptic_op_pj") == 10.0
    monkeypatch.chdir(tmp_path)
    assert load_profile("my.toml").name == "my_chip"  # relative path with .toml
    assert parse_profile(GOOD).total_cores == 4


BROKEN = [
    # (id, old, new, dotted field, problem)
    ("negative energy", "value = 10.0,", "value = -1.0,", "energy.synaptic_op_pj.value", "must be >= 0"),
    ("missing source", 'source = "datasheet table 3", ', "", "energy.synaptic_op_pj.source", "missing"),
    ("blank source", '"datasheet table 3"', '"  "', "energy.synaptic_op_pj.source", "must not be empty"),
    ("proxy not bool", 'table 3", proxy = false', 'table 3", proxy = "no"', "energy.synaptic_op_pj.proxy",
     "must be true or false"),
    ("proxy as int", 'table 3", proxy = false', 'table 3", proxy = 0', "energy.synaptic_op_pj.proxy",
     "must be true or false"),
    ("min > max", "min = -8, max = 7", "min = 7, max = -8", "numerics.weight_exp.min", "must be <= max"),
    ("unknown field", "synaptic_op_pj =", "synaptic_op_pJ =", "energy.synaptic_op_pJ",
     "did you mean 'synaptic_op_pj'"),
    ("unknown section", "[timing]", "[timings]", "timings", "unknown section"),
    ("bare number", 'synaptic_op_pj = { value = 10.0, source = "datasheet table 3", proxy = false }',
     "synaptic_op_pj = 10.0", "energy.synaptic_op_pj", "must be a table"),
    ("number as string", "value = 10.0,", 'value = "10.0",', "energy.synaptic_op_pj.value",
     "must be a number"),
    ("float count", "value = 256,", "value = 256.5,", "structure.neurons_per_core.value",
     "must be an integer"),
    ("nan", "value = 10.0,", "value = nan,", "energy.synaptic_op_pj.value", "finite"),
    ("bad name", 'name = "my_chip"', 'name = "My-Chip"', "profile.name", "must match"),
    ("bad kind", 'kind = "neuromorphic"', 'kind = "chip"', "profile.kind", "'neuromorphic' or 'estimate'"),
    ("bad lava target", "nir_reachable = false", 'nir_reachable = false\nlava_target = "loihi1"',
     "profile.lava_target", "must be one of 'loihi2'"),
    ("decay too wide", "value = 4095,", "value = 4096,", "numerics.decay_max.value", "does not fit"),
    ("decay without bits", 'decay_bits = { value = 12, source = "datasheet", proxy = false }\n', "",
     "numerics.decay_bits", "must be given together"),
    ("delay beyond bits", "max_delay_steps = { value = 10", "max_delay_steps = { value = 16",
     "structure.max_delay_steps.value", "does not fit in numerics.delay_bits"),
    ("no cores", 'cores_per_chip = { value = 4, source = "datasheet", proxy = false }\n', "",
     "structure.cores_per_chip", "required for a neuromorphic profile"),
    ("estimate without MAC", 'kind = "neuromorphic"', 'kind = "estimate"', "energy.mac_pj",
     "required for an estimate profile"),
    ("idle above active", "value = 20.0,", "value = 90.0,", "energy.neuron_idle_pj.value", "swapped?"),
    ("zero time step", "value = 5.0,", "value = 0.0,", "timing.time_step_us.value", "must be > 0"),
    ("missing section", "[energy]\n", "[energy_typo]\n", "energy_typo", "did you mean 'energy'"),
    ("fixed point without weights", 'weight_bits = { value = 8, source = "datasheet", proxy = false }\n', "",
     "numerics.weight_bits", "missing"),
]  # fmt: skip


@pytest.mark.parametrize("old,new,field,problem", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_profile_names_file_field_and_problem(tmp_path, old, new, field, problem):
    message = _profile_error(_write(tmp_path, _mutate(old, new)))
    assert message.startswith(f"profile {tmp_path / 'my.toml'}: {field}: "), message
    assert problem in message


def test_error_message_shape_and_more_count(tmp_path):
    text = _mutate("value = 10.0,", "value = -1.0,").replace("value = 50.0,", "value = -2.0,")
    message = _profile_error(_write(tmp_path, text))
    assert message == (
        f"profile {tmp_path / 'my.toml'}: energy.synaptic_op_pj.value: must be >= 0.0 (got -1.0) (and 1 more)"
    )


def test_syntax_error(tmp_path):
    message = _profile_error(_write(tmp_path, _mutate("[timing]", "[timing")))
    assert "my.toml" in message and "TOML syntax error" in message and "line 24" in message


def test_duplicate_key_is_a_syntax_error(tmp_path):
    message = _profile_error(_write(tmp_path, GOOD + "\n[energy]\n"))
    assert "TOML syntax error" in message


def test_empty_file_names_missing_sections(tmp_path):
    message = _profile_error(_write(tmp_path, ""))
    assert message.endswith("profile: missing section [profile] (and 2 more)")


def test_missing_file_directory_and_encoding(tmp_path):
    assert _profile_error(tmp_path / "nope.toml") == f"profile {tmp_path / 'nope.toml'}: file not found"
    (tmp_path / "dir.toml").mkdir()
    assert "is a directory" in _profile_error(tmp_path / "dir.toml")
    (tmp_path / "latin1.toml").write_bytes(b'[profile]\nname = "caf\xe9"\n')
    assert "not UTF-8" in _profile_error(tmp_path / "latin1.toml")


def test_unknown_name_lists_builtins():
    message = _profile_error("loihi3")
    assert "unknown profile 'loihi3'" in message and "did you mean 'loihi2'" in message
    assert all(name in message for name in BUILTINS)
    assert "built-in" in _profile_error("  ")


# -- CLI ---------------------------------------------------------------------------------------------------

runner = CliRunner()


def _umbrella() -> typer.Typer:
    # Mirrors how the lead registers the sub-app in ptsnn.cli.main.
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    app.add_typer(profiles_app, name="profiles")

    @app.command()
    def version() -> None:  # a second command, so "profiles" stays a sub-group
        typer.echo("0")

    return app


def test_cli_lists_builtins():
    result = runner.invoke(_umbrella(), ["profiles"])
    assert result.exit_code == 0, result.output
    for name in BUILTINS:
        assert name in result.output
    assert "23.6*" in result.output  # loihi2's proxy marker
    assert "0.9 (AC)" in result.output  # cmos45nm shows its AC energy


def test_cli_show_text_and_json():
    result = runner.invoke(_umbrella(), ["profiles", "show", "loihi2"])
    assert result.exit_code == 0, result.output
    for token in ("synaptic_op_pj", "23.6 pJ", "proxy*", "Davies", "[energy]", "62 time steps"):
        assert token in result.output
    result = runner.invoke(_umbrella(), ["profiles", "show", "loihi1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["energy"]["synaptic_op_pj"] == {
        "value": 23.6,
        "source": "Davies et al., IEEE Micro 2018 (Loihi 1): energy per synaptic spike op",
        "proxy": False,
    }
    assert HardwareProfile.model_validate(data) == load_profile("loihi1")  # JSON round-trips


def test_cli_check(tmp_path):
    good = _write(tmp_path, GOOD, "good.toml")
    result = runner.invoke(_umbrella(), ["profiles", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ") and "my_chip" in result.output
    bad = _write(tmp_path, _mutate("value = 10.0,", "value = -1.0,"), "bad.toml")
    result = runner.invoke(_umbrella(), ["profiles", "check", str(bad)])
    assert isinstance(result.exception, ProfileError)
    assert "energy.synaptic_op_pj.value" in str(result.exception)


def test_cli_error_is_one_line_with_exit_code_2(tmp_path, monkeypatch, capsys):
    bad = _write(tmp_path, _mutate("min = -8, max = 7", "min = 7, max = -8"), "bad.toml")
    monkeypatch.setattr(sys, "argv", ["ptsnn", "profiles", "check", str(bad)])
    with pytest.raises(SystemExit) as info:
        run_app(_umbrella(), "ptsnn")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: profile {bad}: numerics.weight_exp.min: min (7) must be <= max (-8)")


# -- docs stay in step with the schema ---------------------------------------------------------------------


def test_docs_mention_every_field():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "hw_profiles.md").read_text(encoding="utf-8")
    from ptsnn.hw_profiles import Energy, Numerics, ProfileInfo, Structure, Timing

    for model in (ProfileInfo, Numerics, Structure, Timing, Energy):
        for field in model.model_fields:
            assert f"`{field}`" in doc, field
