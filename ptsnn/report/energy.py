"""Energy and latency estimates from event counts and a hardware profile.

Two views, never mixed:

* **native** (per profile): each component uses the profile's own per-event figures, and says which fields
  (with their ``proxy`` flag and source) produced it; a component the profile has no figure for is reported
  as not modelled (``null``), never guessed.

  - synaptic operations: neuromorphic profiles ``(Effective_ACs + Effective_MACs) x energy.synaptic_op_pj``
    (a graded payload costs one synaptic op per non-zero synapse, like a spike); estimate profiles
    ``Effective_MACs x energy.mac_pj + Effective_ACs x energy.ac_pj``;
  - neuron updates: ``active x energy.neuron_update_pj + idle x energy.neuron_idle_pj`` when the profile has
    both, else ``all updates x energy.neuron_update_pj``;
  - spike traffic (hop model): every event a layer sends (a spike, or a non-zero host payload entering the
    chip) is one message per core holding a target layer (``convert.design_rules.allocate_cores``, at least
    one); a message costs ``energy.spike_tile_pj + hops x energy.spike_hop_pj`` with ``hops`` = 1 by default
    (consecutive layers on neighbouring tiles; an assumption, set ``hops`` to change it). The Sigma readout
    is read by the host: that traffic is not modelled.

* **paper** (the usual SNN-paper estimate, 45 nm CMOS, PTS-SNN's 0.35 mJ per sample included):
  ``E = E_MAC x MACs(layers fed by real values, dense) + E_AC x sum(spikes x fan-out)(layers fed by spikes)``
  with ``E_MAC`` = cmos45nm ``energy.mac_pj`` and ``E_AC`` = cmos45nm ``energy.ac_pj``.
"""

from __future__ import annotations

from ptsnn.convert.design_rules import allocate_cores
from ptsnn.chip.ir import ChipGraph
from ptsnn.report.collect import ActivityCollector

HOPS_PER_MESSAGE = 1
COMPONENTS = ("synaptic_ops", "neuron_updates", "spike_traffic")
PAPER_PROFILE = "cmos45nm"
# A published result, not a hardware number: what the paper estimate is compared with.
PTS_SNN_REFERENCE = dict(
    energy_mj=0.35, what="PTS-SNN inference energy per sample (SNN part), as published",
    source="Su, Wang, Zhang, arXiv 2602.08240 (2026), abstract; almost certainly the 45 nm convention")
# TNAS-ER's deployed figures: measured on the authors' hardware (reportedly a TTFS accelerator, unconfirmed),
# for their network and data; shown next to this network's estimates, never used in them.
TNAS_ER_REFERENCE = dict(
    energy_mj=50.0, latency_ms=48.0,
    what="TNAS-ER on neuromorphic hardware, per inference, as published (48 ms, 0.05 J)",
    source="Liu et al., arXiv 2512.02459 (Dec 2025); hardware reportedly a TTFS accelerator (unconfirmed); "
           "their network and eye data, not this one")


def published_reference(graph: ChipGraph) -> dict:
    """The published figure a model's estimates are shown next to: TNAS-ER for TTFS graphs, else PTS-SNN."""
    return dict(TNAS_ER_REFERENCE if (graph.meta or {}).get("model_kind") == "ttfs" else PTS_SNN_REFERENCE)


def field_use(profile, path: str) -> dict | None:
    """``{"path", "value", "unit", "proxy", "source"}`` of a profile number, or None if the profile lacks it."""
    from ptsnn.hw_profiles import unit_of

    item = profile.get(path)
    if item is None:
        return None
    return dict(path=path, value=item.value, unit=unit_of(path), proxy=bool(item.proxy), source=item.source)


def _mean(total: float, n: int) -> float:
    return float(total) / n if n else 0.0


def layer_cores(graph: ChipGraph, profile) -> dict[str, int | None]:
    """Cores per chip layer under ``profile`` (None where the profile has no core structure: no
    ``structure.neurons_per_core`` nor ``structure.synapse_memory_bytes_per_core``)."""
    if profile.get("structure.neurons_per_core") is None and profile.get("structure.synapse_memory_bytes_per_core") is None:
        return {x.name: None for x in [*graph.populations, *graph.accumulators]}
    return {a.layer: int(a.cores) for a in allocate_cores(graph, profile)}


def native_energy(graph: ChipGraph, activity: ActivityCollector, profile, hops: int = HOPS_PER_MESSAGE) -> dict:
    """Energy per utterance by component and by layer, latency, cores, for one profile (native view)."""
    n = len(activity.utterances)
    chip_layers = [*graph.populations, *graph.accumulators]
    cores = layer_cores(graph, profile)
    per_layer: dict[str, dict[str, float | None]] = {x.name: {} for x in [*graph.inputs, *chip_layers]}
    components = []

    # -------------------------------------------------------------------------- synaptic operations
    syn, mac, ac = (field_use(profile, f"energy.{k}") for k in ("synaptic_op_pj", "mac_pj", "ac_pj"))
    use_mac_ac = mac is not None and ac is not None and (profile.profile.kind == "estimate" or syn is None)
    if use_mac_ac:
        fields, formula = [mac, ac], "Effective_MACs x energy.mac_pj + Effective_ACs x energy.ac_pj"
        cost = lambda macs, acs: macs * mac["value"] + acs * ac["value"]  # noqa: E731
    elif syn is not None:
        fields, formula = [syn], "(Effective_ACs + Effective_MACs) x energy.synaptic_op_pj"
        cost = lambda macs, acs: (macs + acs) * syn["value"]  # noqa: E731
    else:
        fields, formula, cost = [], None, None
    for x in chip_layers:
        macs = _mean(activity.total(x.name, "effective_macs"), n)
        acs = _mean(activity.total(x.name, "effective_acs"), n)
        per_layer[x.name]["synaptic_ops"] = cost(macs, acs) if cost else None
    for x in graph.inputs:
        per_layer[x.name]["synaptic_ops"] = None
    components.append(_component("synaptic_ops", per_layer, formula, fields,
                                 None if cost else "the profile has no synaptic_op_pj nor mac_pj/ac_pj"))

    # -------------------------------------------------------------------------------- neuron updates
    active, idle = field_use(profile, "energy.neuron_update_pj"), field_use(profile, "energy.neuron_idle_pj")
    if active is not None and idle is not None:
        fields = [active, idle]
        formula = "active updates x energy.neuron_update_pj + idle updates x energy.neuron_idle_pj"
        note = "active = neuron-steps that received at least one synaptic operation; idle = the others"
        ncost = lambda act, upd: act * active["value"] + (upd - act) * idle["value"]  # noqa: E731
    elif active is not None:
        fields, formula, note = [active], "membrane updates x energy.neuron_update_pj", "no idle figure: every update costed as active"
        ncost = lambda act, upd: upd * active["value"]  # noqa: E731
    else:
        fields, formula, note, ncost = [], None, "the profile has no neuron_update_pj", None
    for x in chip_layers:
        upd = _mean(activity.total(x.name, "membrane_updates"), n)
        act = _mean(activity.total(x.name, "active_updates"), n)
        per_layer[x.name]["neuron_updates"] = ncost(act, upd) if ncost else None
    for x in graph.inputs:
        per_layer[x.name]["neuron_updates"] = None
    components.append(_component("neuron_updates", per_layer, formula, fields, note))

    # ---------------------------------------------------------------------------------- spike traffic
    tile, hop = field_use(profile, "energy.spike_tile_pj"), field_use(profile, "energy.spike_hop_pj")
    if tile is not None:
        fields = [tile] + ([hop] if hop is not None else [])
        per_message = tile["value"] + (hops * hop["value"] if hop is not None else 0.0)
        formula = (f"messages x (energy.spike_tile_pj + {hops} hop(s) x energy.spike_hop_pj)" if hop is not None
                   else "messages x energy.spike_tile_pj")
        note = (f"hop model: one message per sent event and target core; {hops} hop(s) per message (assumed); "
                "readout traffic to the host not modelled")
    else:
        fields, per_message, formula, note = [], None, None, "the profile has no spike_tile_pj"
    for x in [*graph.inputs, *graph.populations]:
        targets = sorted({e.target for e in graph.outgoing(x.name)})
        dest = sum(max(cores.get(t) or 0, 1) for t in targets)
        counter = "output_events" if x in graph.inputs else "output_spikes"
        messages = _mean(activity.total(x.name, counter), n) * dest
        per_layer[x.name]["messages"] = messages
        per_layer[x.name]["spike_traffic"] = messages * per_message if per_message is not None else None
    for x in graph.accumulators:
        per_layer[x.name]["messages"] = 0.0
        per_layer[x.name]["spike_traffic"] = 0.0 if per_message is not None else None
    components.append(_component("spike_traffic", per_layer, formula, fields, note))

    for name, row in per_layer.items():
        vals = [row[c] for c in COMPONENTS if row.get(c) is not None]
        row["total"] = float(sum(vals)) if vals else None
    modelled = [c for c in components if c["modelled"]]
    total = float(sum(c["per_utterance_pj"] for c in modelled)) if modelled else None
    used = [f for c in components for f in c["fields"]]

    step = field_use(profile, "timing.time_step_us")
    mean_steps = _mean(activity.total_steps, n)
    latency = dict(steps_per_utterance=mean_steps, time_step_us=step["value"] if step else None,
                   per_utterance_us=mean_steps * step["value"] if step else None,
                   formula="steps x timing.time_step_us", fields=[step] if step else [],
                   uses_proxy=bool(step and step["proxy"]))
    measured = field_use(profile, "energy.inference_uj")
    if measured is not None:
        measured["note"] = profile.energy.inference_uj.note
    return dict(
        name=profile.name, kind=profile.profile.kind, description=profile.profile.description,
        cores=cores, cores_total=None if None in cores.values() else int(sum(cores.values())),
        energy=dict(components=components, per_utterance_pj=total,
                    per_utterance_uj=total / 1e6 if total is not None else None,
                    uses_proxy=any(f["proxy"] for f in used),
                    proxy_fields=sorted({f["path"] for f in used if f["proxy"]}),
                    not_modelled=[c["component"] for c in components if not c["modelled"]]),
        layers={k: {c: v for c, v in row.items()} for k, row in per_layer.items()},
        latency=latency, measured_inference=measured, hops_per_message=hops)


def _component(name: str, per_layer: dict, formula: str | None, fields: list[dict], note: str | None) -> dict:
    modelled = formula is not None
    total = sum(row[name] for row in per_layer.values() if row.get(name) is not None) if modelled else None
    return dict(component=name, modelled=modelled, per_utterance_pj=float(total) if modelled else None,
                formula=formula, fields=fields, uses_proxy=any(f["proxy"] for f in fields), note=note)


def paper_estimate(graph: ChipGraph, activity: ActivityCollector, profile) -> dict:
    """The usual SNN-paper estimate with ``profile``'s (cmos45nm) MAC and AC energies, per utterance."""
    n = len(activity.utterances)
    mac, ac = field_use(profile, "energy.mac_pj"), field_use(profile, "energy.ac_pj")
    if mac is None or ac is None:
        from ptsnn.errors import ProfileError

        raise ProfileError(f"--estimate paper needs energy.mac_pj and energy.ac_pj ({profile.name} lacks them)")
    layers = {}
    for x in [*graph.populations, *graph.accumulators]:
        macs = _mean(activity.total(x.name, "paper_macs"), n)
        acs = _mean(activity.total(x.name, "paper_acs"), n)
        layers[x.name] = dict(macs=macs, acs=acs, energy_pj=macs * mac["value"] + acs * ac["value"])
    macs = sum(r["macs"] for r in layers.values())
    acs = sum(r["acs"] for r in layers.values())
    total = macs * mac["value"] + acs * ac["value"]
    first = sorted({e.target for e in graph.synapses if graph.message_bits(e.source) > 0})
    return dict(
        profile=profile.name,
        formula="E = energy.mac_pj x MACs(layers fed by real values: every weight entry x steps) + "
                "energy.ac_pj x sum over spikes of the neuron's fan-out (layers fed by spikes)",
        real_valued_layers=first, fields=[mac, ac], uses_proxy=mac["proxy"] or ac["proxy"],
        macs_per_utterance=macs, acs_per_utterance=acs, per_utterance_pj=total, per_utterance_mj=total / 1e9,
        layers=layers, reference=published_reference(graph),
        note="arithmetic only (no memory, no neuron updates, no traffic), on the quantized chip graph's spikes")
