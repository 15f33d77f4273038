"""The PTS-SNN search family called directly (no engine): build, design-rule check, brief evaluation on the
synthetic speech corpus, and the shipped space files."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
import torch

import ptsnn.search.families  # noqa: F401  (registers the families)
from ptsnn.errors import InputError
from ptsnn.hw_profiles import load_profile
from ptsnn.search.families import ptssnn as fam_mod
from ptsnn.search.family import FAMILIES

SPACES = Path(fam_mod.__file__).resolve().parents[1] / "spaces"
TINY = dict(hidden=16, blocks=1, shift_div=4, key_dim=8, value_dim=8, prompts=2, calibrated_blocks=1)
CORPUS = dict(num_speakers=3, utterances_per_class=3, min_duration=0.6, max_duration=1.0,
              classes=["angry", "neutral", "sad"])
BUDGET = dict(epochs=1, qat=True, qat_epochs=1, eval_samples=3)


@pytest.fixture(scope="module")
def family():
    return FAMILIES["ptssnn"]()


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    return dict(corpus=CORPUS, frontend={"kind": "fbank", "n_mels": 16},
                cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def evaluated(family, fixed, tmp_path_factory):
    """Two evaluations of one candidate with the same seed and one with another seed."""
    cfg = family.build(TINY, fixed)
    root = tmp_path_factory.mktemp("trials")
    lines: list[str] = []
    runs = [family.evaluate(cfg, load_profile("loihi2"), BUDGET, root / name, seed, lines.append)
            for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    return cfg, runs, lines


# ------------------------------------------------------------------------------------------------ build
def test_build_applies_the_point_over_the_preset(family, fixed):
    assert {"hidden", "blocks", "shift_div", "key_dim", "value_dim", "prompts", "calibrated_blocks",
            "steps_per_frame", "input_bits"} <= family.parameter_names()
    cfg = family.build(dict(TINY, input_bits=4, steps_per_frame=2), fixed)
    for name, value in TINY.items():
        assert getattr(cfg.model, name) == value
    assert cfg.model.input_bits == 4 and cfg.model.steps_per_frame == 2
    assert cfg.model.input_dim == 16  # the front end's n_mels, not the preset's 80
    assert cfg.model.num_classes == 3  # the corpus's classes
    assert cfg.frontend["kind"] == "fbank" and cfg.train.epochs == 20  # untouched preset field
    paper = family.build({}, dict(fixed, preset="paper"))
    assert paper.model.hidden == 436 and paper.model.input_dim == 16


@pytest.mark.parametrize("params, extra, match", [
    (dict(TINY, hidden=2, shift_div=4), {}, "hidden // shift_div must be >= 1"),
    (dict(TINY, hidden=16.5), {}, "model.hidden"),
    (dict(TINY, width=3), {}, "unknown parameter 'width'"),
    (TINY, {"epochs": 3}, r"unknown key 'epochs'"),
    (TINY, {"frontend": {"kind": "features", "dim": 16}}, "does not read audio"),
    (TINY, {"corpus": {"speakers": 2}}, "fixed.corpus: unknown option 'speakers'"),
    (TINY, {"corpus": {"num_speakers": 0}}, "num_speakers"),
    (TINY, {"corpus": {"num_speakers": 10**6}}, "the limits are 20,000 utterances"),
    (TINY, {"corpus": {"num_speakers": "3"}}, "fixed.corpus"),
    (TINY, {"preset": "huge"}, "unknown config 'huge'"),
    (TINY, {"train": {"valid_split": "none"}}, "leaves no validation split"),
    (TINY, {"train": {"batch_size": 0}}, "train.batch_size"),
])
def test_a_point_that_is_no_network_is_a_one_line_input_error(family, fixed, params, extra, match):
    with pytest.raises(InputError, match=match) as err:
        family.build(params, dict(fixed, **extra))
    assert "\n" not in str(err.value)


def test_a_bad_budget_is_a_one_line_input_error(family, fixed, tmp_path):
    cfg = family.build(TINY, fixed)
    for budget, match in (({"epochs": 0}, "epochs"), ({"train_subset": 1.5}, "train_subset"),
                          ({"qat": "yes"}, "qat"), ({"generations": 2}, "generations")):
        with pytest.raises(InputError, match=match) as err:
            family.evaluate(cfg, load_profile("loihi2"), budget, tmp_path, 0)
        assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing trained


# ------------------------------------------------------------------------------------------------ check
def test_check_passes_on_loihi2_and_names_the_rule_elsewhere(family, fixed):
    cfg = family.build(TINY, fixed)
    assert family.check(cfg, load_profile("loihi2")) == []
    loihi1 = family.check(cfg, load_profile("loihi1"))
    assert [v.rule for v in loihi1] == ["graded_input"] and loihi1[0].layer == "input"
    assert "graded_spike_bits" in loihi1[0].message
    xylo = {v.rule: v for v in family.check(cfg, load_profile("xylo_audio2"))}
    assert {"graded_input", "max_delay", "capacity"} <= set(xylo)
    assert "structure.max_delay_steps" in xylo["max_delay"].message
    assert set(xylo) <= fam_mod.STRUCTURAL_RULES  # value rules wait for trained weights


def test_check_counts_every_synapse_of_the_dense_network(family, fixed):
    """The untrained net's small weights would round to zero; the check prices the net with all synapses."""
    from ptsnn.convert.design_rules import allocate_cores

    cfg = family.build(dict(TINY, hidden=64), fixed)
    graph = fam_mod.dense_chip_graph(cfg)
    synapses = {a.layer: a.synapses for a in allocate_cores(graph, load_profile("loihi2"))}
    assert synapses["in_proj"] == 16 * 64 and synapses["enc.0"] == 64 * 64
    assert synapses["context"] == 2 * 8  # the diagonal group stays diagonal


# --------------------------------------------------------------------------------------------- evaluate
def test_evaluate_scores_costs_and_writes_a_convertible_checkpoint(evaluated, tmp_path):
    from ptsnn.convert.bundle import convert_checkpoint

    _, (ev, _, _), lines = evaluated
    assert 0.0 <= ev.war <= 1.0 and 0.0 <= ev.uar <= 1.0
    for name in ("energy_uj", "latency_ms", "cores", "synops"):
        assert ev.costs[name] > 0, name
    assert ev.train_seconds > 0 and ev.convert_seconds > 0
    assert ev.checkpoint.name == "qat.pt" and ev.details["quantization"] == "qat"
    assert ev.details["score_split"] == "valid" and ev.details["cost_utterances"] == 3
    assert ev.details["valid_utterances"] == 9 and 0.0 <= ev.details["test_war"] <= 1.0
    assert any("valid WAR" in line for line in lines)
    assert any(line.startswith("float   1/1") for line in lines)  # the trainer's epoch lines reach the log
    assert all("\n" not in line for line in lines)
    result = convert_checkpoint(ev.checkpoint, load_profile("loihi2"), tmp_path / "bundle", emit=("netx",))
    assert (tmp_path / "bundle" / "netx" / "chip_prefix.net").is_file()
    assert result.manifest["source"]["quantization"] == "qat"
    assert result.report["total_cores"] == ev.costs["cores"]  # the same IR and allocation as ptsnn-convert


def test_same_seed_same_scores_and_costs(evaluated):
    _, (a, b, c), _ = evaluated
    assert (a.war, a.uar, a.costs) == (b.war, b.uar, b.costs)
    assert a.checkpoint != b.checkpoint
    sa = torch.load(a.checkpoint, weights_only=True)["state_dict"]
    sb = torch.load(b.checkpoint, weights_only=True)["state_dict"]
    sc = torch.load(c.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)  # the seed reaches the training


def test_without_qat_the_post_training_quantized_model_is_scored(family, fixed, tmp_path):
    cfg = family.build(TINY, fixed)
    ev = family.evaluate(cfg, load_profile("loihi2"), dict(epochs=1, train_subset=0.5, eval_samples=2),
                         tmp_path, 3)
    assert ev.checkpoint.name == "float.pt" and ev.details["quantization"] == "post-training"
    assert ev.details["train_utterances"] == 3 * 2  # ceil(0.5 * 3) of each class's 3 training utterances
    assert ev.costs["energy_uj"] > 0


def test_corpus_features_are_computed_once_per_process(family, fixed, evaluated):
    from ptsnn.frontend import build_frontend

    fe = build_frontend(family.build(TINY, fixed).frontend)
    cache = Path(fixed["cache_dir"])
    first = fam_mod.corpus_features(CORPUS, fe, cache)
    assert fam_mod.corpus_features(CORPUS, fe, cache) is first
    corpus, features = first
    assert len(corpus.utterances) == 3 * 3 * 3 and set(features) == {u.utt_id for u in corpus.utterances}
    assert len(list(cache.rglob("*.npy"))) == 27  # through the on-disk front-end cache
    assert len(list((cache / fam_mod.CORPORA_DIR).iterdir())) == 1  # one corpus folder, no leftovers


# --------------------------------------------------------------------------------------------- spaces
@pytest.mark.parametrize("space", ["ptssnn_small.toml", "ptssnn_default.toml"])
def test_shipped_spaces_name_known_parameters_and_their_extremes_fit_loihi2(family, space, tmp_path):
    doc = tomllib.loads((SPACES / space).read_text())
    assert doc["search"]["family"] == "ptssnn" and doc["search"]["profile"] == "loihi2"
    assert set(doc["space"]) <= family.parameter_names()
    fam_mod.parse_budget(doc["budget"])
    fixed = dict(doc["fixed"], cache_dir=str(tmp_path))
    for pick in (min, max):
        point = {k: pick(v["choices"]) if "choices" in v else pick(v["low"], v["high"])
                 for k, v in doc["space"].items()}
        cfg = family.build(point, fixed)
        assert family.check(cfg, load_profile("loihi2")) == [], (space, point)


def test_two_processes_share_one_corpus_folder(tmp_path):
    """Worker processes of one search start together: each may synthesise the corpus, one folder remains and
    both read identical features."""
    import subprocess
    import sys

    script = ("import sys, hashlib, numpy as np\n"
              "from ptsnn.frontend import build_frontend\n"
              "from ptsnn.search.families.ptssnn import corpus_features\n"
              f"c, f = corpus_features({CORPUS!r}, build_frontend({{'kind': 'fbank', 'n_mels': 16}}), "
              "__import__('pathlib').Path(sys.argv[1]))\n"
              "h = hashlib.sha256(b''.join(f[k].tobytes() for k in sorted(f))).hexdigest()\n"
              "print(len(f), h)\n")
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert outs[0][0] == outs[1][0] and outs[0][0].startswith("27 ")
    assert [p.name for p in (tmp_path / fam_mod.CORPORA_DIR).iterdir()] == [fam_mod._corpus_root(tmp_path, CORPUS).name]


# ------------------------------------------------------------------------------------- through the engine
PTS_SPACE = """
[search]
family = "ptssnn"
profile = "loihi2"
objectives = ["war:max", "uar:max", "energy_uj:min", "latency_ms:min"]
seed = 3
trials = 3

[search.nsga2]
population_size = 2

[fixed]
preset = "small"
frontend = {{ kind = "fbank", n_mels = 16 }}
corpus = {{ num_speakers = 4, utterances_per_class = 2, min_duration = 0.6, max_duration = 0.9 }}
{fixed}

[budget]
epochs = 1
qat = {qat}
eval_samples = 2

[space]
hidden = {{ choices = [8, 16] }}
blocks = {{ low = 1, high = 2 }}
key_dim = {{ choices = [8] }}
value_dim = {{ choices = [8] }}
prompts = {{ low = 1, high = 2 }}
"""


def test_tiny_ptssnn_search_through_the_engine_exports_a_convertible_candidate(tmp_path):
    """The PTS-SNN space runs through the real engine: a study of 3 trials, a front whose candidates carry
    the sampled model fields, and an exported candidate that ptsnn-convert turns into a loihi2 bundle."""
    from ptsnn.convert.bundle import convert_checkpoint
    from ptsnn.search.engine import default_storage, describe_storage, run_search
    from ptsnn.search.export import export_checkpoint
    from ptsnn.search.outputs import write_outputs
    from ptsnn.search.space import load_space

    path = tmp_path / "pts.toml"
    path.write_text(PTS_SPACE.format(fixed=f'cache_dir = "{tmp_path / "cache"}"', qat="false"))
    space = load_space(path)
    assert space.budget["qat"] is False and space.budget["lr"] is None  # the family's own budget schema
    out = tmp_path / "run"
    url = default_storage(out)
    study = run_search(space, out, trials=3, workers=1, storage_url=url)
    front = write_outputs(study, space, out, describe_storage(url))
    assert front["family"] == "ptssnn" and front["candidates"]
    best = front["candidates"][0]
    assert {"hidden", "blocks", "prompts"} <= set(best["params"])
    assert best["config"]["model"]["hidden"] == best["params"]["hidden"]
    assert best["costs"]["energy_uj"] > 0 and 0 <= best["war"] <= 1
    ckpt = export_checkpoint(out, best["trial"], tmp_path / "cand.pt")
    result = convert_checkpoint(ckpt, load_profile("loihi2"), tmp_path / "bundle")
    assert (tmp_path / "bundle" / "manifest.json").is_file() and result is not None
