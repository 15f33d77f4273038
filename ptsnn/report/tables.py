"""The report's tables, built once from the JSON document and rendered as Markdown or HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    total_rows: list[int] = field(default_factory=list)  # indices of rows that are totals (shown marked as such)

    def numeric(self) -> list[bool]:
        """Per column: every cell is a number (or a dash / n/m), so it is right-aligned."""
        return [all(_NUMBER.match(str(row[i])) for row in self.rows if str(row[i]))
                for i in range(len(self.columns))]


_NUMBER = re.compile(r"^([-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ?%| us)?\*?|-|n/m)$")


NA = "n/m"  # not modelled by the profile
DASH = "-"  # not applicable


def fmt(x, digits: int = 4) -> str:
    """Integers with thousands separators; other numbers with ``digits`` significant digits (one decimal from
    1,000 up, scientific notation below 0.001 and from 1e9 up)."""
    if x is None:
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 1e9):
        return f"{int(x):,}"
    if x == 0:
        return "0"
    if abs(x) >= 1e9 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    return f"{x:.{digits}g}"


def pct(x) -> str:
    return DASH if x is None else f"{100 * x:.2f} %"


def pj(x) -> str:
    return NA if x is None else fmt(x)


def nj(x_pj) -> str:
    return NA if x_pj is None else fmt(x_pj / 1e3)


def uj(x_pj) -> str:
    return NA if x_pj is None else fmt(x_pj / 1e6)


def proxy_mark(flag: bool) -> str:
    return "*" if flag else ""


def does_not_fit(entry: dict) -> str:
    return f"does not fit: {entry['rule']}"


def report_tables(data: dict) -> list[Table]:
    tables = []
    profiles = data["profiles"]
    names = list(profiles)
    unfit = data.get("not_fitting") or {}
    paper = data["estimate"]["paper"]
    host = data["host"]

    # ------------------------------------------------------------------------------------ summary
    rows = []
    for name in names:
        p = profiles[name]
        e = p["energy"]
        comp = {c["component"]: c for c in e["components"]}
        sysrow = data["system"][name]
        lat = p["latency"]
        rows.append([
            name + proxy_mark(e["uses_proxy"]), p["kind"],
            uj(e["per_utterance_pj"]),
            *[uj(comp[c]["per_utterance_pj"]) for c in ("synaptic_ops", "neuron_updates", "spike_traffic")],
            uj(sysrow["host_pj"]), uj(sysrow["total_pj"]),
            DASH if lat["per_utterance_us"] is None else fmt(lat["per_utterance_us"] / 1000) + proxy_mark(lat["uses_proxy"]),
            fmt(p["cores_total"]),
        ])
    for name, u in unfit.items():
        rows.append([name, u["kind"], does_not_fit(u), *[DASH] * 7])
    tables.append(Table(
        "summary", "Energy and latency per utterance (native view, per profile)",
        ["profile", "kind", "chip uJ", "synaptic ops uJ", "neuron updates uJ", "spike traffic uJ",
         f"host uJ ({host['profile']})", "system uJ (chip + host)", "latency ms", "cores"],
        rows,
        [f"* uses numbers marked proxy (borrowed, estimated or unconfirmed): see the field tables below. {NA} = "
         "not modelled: the profile has no figure for that component.",
         "chip = the SNN part on the chip only; host = " + ("clip encoding + input quantization" if "ttfs" in data
                                                              else "front end + LayerNorm + tanh + quantization") +
         f" on a CPU ({host['profile']}); system = both. Mean over {data['data']['utterances']} utterance(s), "
         f"{fmt(data['data']['mean_steps'])} steps each.",
         *[f"{name} {does_not_fit(u)} ({u['message']}); no energy figures for a profile the model cannot be "
           "mapped to (the design rules of ptsnn-convert --target)." for name, u in unfit.items()]]))

    if unfit:
        rows = [[name, v["rule"], v["layer"], v["value"], v["limit"], v["fix"]]
                for name, u in unfit.items() for v in u["violations"]]
        tables.append(Table("not_fitting", "Profiles the model does not fit (design rules and core allocation)",
                            ["profile", "rule", "layer", "value", "limit", "fix"], rows,
                            ["The rules ptsnn-convert --target enforces; energy is not estimated for these profiles."]))

    if paper is not None:
        ref = paper["reference"]
        rows = [["paper-style estimate (this model, 45 nm: E_MAC x MACs + E_AC x ACs)",
                 fmt(paper["per_utterance_mj"]), fmt(paper["macs_per_utterance"]), fmt(paper["acs_per_utterance"]),
                 "energy.mac_pj, energy.ac_pj of " + paper["profile"]],
                [f"published: {ref['what']}", fmt(ref["energy_mj"]), DASH, DASH, ref["source"]]]
        for name in names:
            e = profiles[name]["energy"]
            rows.append([f"native estimate, chip part under {name}{proxy_mark(e['uses_proxy'])}",
                         NA if e["per_utterance_pj"] is None else fmt(e["per_utterance_pj"] / 1e9),
                         DASH, DASH, ", ".join(sorted({f["path"] for c in e["components"] for f in c["fields"]}))])
        for name, u in unfit.items():
            rows.append([f"native estimate, chip part under {name}", does_not_fit(u), DASH, DASH, u["message"]])
        rows.append([f"host part under {host['profile']} (not in either paper figure)",
                     fmt(host["per_utterance_pj"] / 1e9), fmt(host["ops_per_utterance"]["macs"]), DASH,
                     "energy.mac_pj, energy.ac_pj"])
        tables.append(Table(
            "paper", "Paper-style estimate next to the native estimates (mJ per utterance)",
            ["estimate", "mJ / utterance", "MACs", "ACs", "from"], rows,
            [paper["formula"], "MACs: layers fed by real values (" + ", ".join(paper["real_valued_layers"]) +
             "), dense; ACs: spikes x fan-out (non-zero synapses) of every other layer. " + paper["note"] + "."]))

    # ---------------------------------------------------------------------------------- per layer
    rows = []
    for r in data["layers"]:
        c = r["counts"]
        out = c.get("output_spikes") or c.get("output_events")
        rows.append([
            r["name"], r["kind"] if not r.get("role") or r["role"] == "plif" else r["role"], fmt(r["neurons"]),
            fmt(r["synapses"]),
            fmt(c["input_events"]["per_utterance"]) if "input_events" in c else DASH,
            fmt(out["per_utterance"]) if out else DASH,
            pct(r["firing_rate"]) if r["firing_rate"] is not None else DASH,
            pct(r["activation_sparsity"]),
            fmt(c["effective_macs"]["per_utterance"]) if "effective_macs" in c else DASH,
            fmt(c["effective_acs"]["per_utterance"]) if "effective_acs" in c else DASH,
            fmt(c["dense_ops"]["per_utterance"]) if "dense_ops" in c else DASH,
            fmt(c["membrane_updates"]["per_utterance"]) if "membrane_updates" in c else DASH,
            fmt(r.get("silent_pct"), 3) if r.get("silent_pct") is not None else DASH,
            fmt(r.get("saturated_pct"), 3) if r.get("saturated_pct") is not None else DASH,
        ])
    t = data["totals"]
    tc = t["counts"]
    rows.append(["total (chip)", "", fmt(t["neurons"]), fmt(t["synapses"]), fmt(tc["input_events"]["per_utterance"]),
                 fmt(tc["output_spikes"]["per_utterance"]), pct(t["firing_rate"]), pct(t["activation_sparsity"]),
                 fmt(tc["effective_macs"]["per_utterance"]), fmt(tc["effective_acs"]["per_utterance"]),
                 fmt(tc["dense_ops"]["per_utterance"]), fmt(tc["membrane_updates"]["per_utterance"]), "", ""])
    layer_totals = [len(rows) - 1]
    tables.append(Table(
        "layers", "Per layer, per utterance",
        ["layer", "kind", "neurons", "synapses", "input events", "output events", "firing rate",
         "activation sparsity", "Effective_MACs", "Effective_ACs", "Dense", "MembraneUpdates", "silent %",
         "saturated %"], rows,
        ["input events: non-zero activations the layer's sources sent within the utterance's steps; output events: spikes (the "
         "host input: non-zero graded payloads); firing rate = spikes / (neurons x steps); synapses = non-zero "
         "weights; silent: neurons that never fire on the data; saturated: (utterance, neuron) pairs firing on "
         "> 90 % of steps."], total_rows=layer_totals))

    rows = []
    for r in data["layers"]:
        c = r["counts"]
        out = c.get("output_spikes") or c.get("output_events")
        rows.append([r["name"],
                     fmt(c["input_events"]["per_step"]) if "input_events" in c else DASH,
                     fmt(out["per_step"]) if out else DASH,
                     fmt(c["synaptic_ops"]["per_step"]) if "synaptic_ops" in c else DASH,
                     fmt(c["dense_ops"]["per_step"]) if "dense_ops" in c else DASH,
                     fmt(c["active_updates"]["per_step"]) if "active_updates" in c else DASH,
                     fmt(c["membrane_updates"]["per_step"]) if "membrane_updates" in c else DASH])
    rows.append(["total (chip)", fmt(tc["input_events"]["per_step"]), fmt(tc["output_spikes"]["per_step"]),
                 fmt(tc["synaptic_ops"]["per_step"]), fmt(tc["dense_ops"]["per_step"]),
                 fmt(tc["active_updates"]["per_step"]), fmt(tc["membrane_updates"]["per_step"])])
    tables.append(Table("layers_per_step", "Per layer, per time step",
                        ["layer", "input events", "output events", "synaptic ops (effective)", "Dense",
                         "active updates", "MembraneUpdates"], rows, total_rows=layer_totals))

    # ------------------------------------------------------------------------------ energy per layer
    rows = []
    for r in data["layers"]:
        cells = [r["name"]]
        for name in names:
            cells += [fmt(r["cores"][name]) if r["kind"] != "input" else DASH, nj(r["energy_pj"][name]["total"])]
        rows.append(cells)
    cells = ["total"]
    for name in names:
        cells += [fmt(t["cores"][name]), nj(t["energy_pj"][name]["total"])]
    rows.append(cells)
    cols = ["layer"]
    for name in names:
        cols += [f"{name} cores", f"{name} nJ{proxy_mark(profiles[name]['energy']['uses_proxy'])}"]
    tables.append(Table("layer_energy", "Cores and chip energy per layer (nJ per utterance, native view)", cols, rows,
                        ["The input layer's energy is the traffic of its payload messages into the chip; the "
                         "readout (Sigma) energy is its synaptic ops and updates.",
                         *[f"{name}: {does_not_fit(u)}, not shown." for name, u in unfit.items()]],
                        total_rows=[len(rows) - 1]))

    # ------------------------------------------------------------------------- components and fields
    rows = []
    for name in names:
        for comp in profiles[name]["energy"]["components"]:
            fields = "; ".join(f"{f['path']} = {fmt(f['value'])} {f['unit']}{' (proxy)' if f['proxy'] else ''}: "
                               f"{f['source']}" for f in comp["fields"])
            rows.append([name, comp["component"], nj(comp["per_utterance_pj"]), comp["formula"] or NA,
                         fields or (comp["note"] or NA)])
        lat = profiles[name]["latency"]
        rows.append([name, "latency", DASH if lat["per_utterance_us"] is None else f"{fmt(lat['per_utterance_us'])} us",
                     lat["formula"], "; ".join(f"{f['path']} = {fmt(f['value'])} {f['unit']}"
                                               f"{' (proxy)' if f['proxy'] else ''}: {f['source']}"
                                               for f in lat["fields"]) or "profile has no timing.time_step_us"])
        m = profiles[name].get("measured_inference")
        if m:
            rows.append([name, "measured inference (reference only)", f"{fmt(m['value'])} uJ", "not used above",
                         f"{m['path']}: {m['source']}" + (f" ({m['note']})" if m.get("note") else "")])
    tables.append(Table("fields", "Where every energy number comes from (per utterance)",
                        ["profile", "component", "nJ / utterance", "formula", "profile fields (value, proxy, source)"],
                        rows, [f"spike traffic hop model: one message per sent event and target core, "
                               f"{data['hops_per_message']} hop(s) per message (an assumption); see docs/report.md."]))

    # ----------------------------------------------------------------------------------- metrics
    rows = []
    for key, m in data["metrics"].items():
        v = m["value"]
        if isinstance(v, dict):
            v = ", ".join(f"{k} {fmt(x)}" for k, x in v.items())
        elif isinstance(v, float) and m["unit"] == "fraction":
            v = f"{v:.4f}"
        else:
            v = fmt(v)
        rows.append([key, v, m["unit"], m["definition"]])
    tables.append(Table("metrics", "NeuroBench metrics", ["metric", "value", "unit", "definition"], rows))

    # -------------------------------------------------------------------------------------- host
    rows = []
    for s in host["stages"]:
        rows.append([s["stage"], fmt(s["macs"]), fmt(s["adds"]), fmt(s["mults"]), fmt(s["other"]),
                     fmt(s["energy_pj_per_frame"]), s["note"]])
    pf, pu = host["ops_per_frame"], host["ops_per_utterance"]
    rows.append(["total per frame", fmt(pf["macs"]), fmt(pf["adds"]), fmt(pf["mults"]), fmt(pf["other"]),
                 fmt(sum(s["energy_pj_per_frame"] for s in host["stages"])), ""])
    rows.append([f"total per utterance ({fmt(host['frames_per_utterance'])} frames + readout division)",
                 fmt(pu["macs"]), fmt(pu["adds"]), fmt(pu["mults"]), fmt(pu["other"]),
                 fmt(host["per_utterance_pj"]), ""])
    tables_host = Table("host", f"Host part (not on the chip), energy under {host['profile']}",
                        ["stage", "MACs", "adds", "multiplies", "other ops", "pJ (per frame; last row per utterance)", "note"], rows,
                        total_rows=[len(rows) - 2, len(rows) - 1], notes=[host["note"] + ".", host["formula"] + "; " + "; ".join(
                            f"{f['path']} = {fmt(f['value'])} {f['unit']}: {f['source']}" for f in host["fields"])])
    tables.append(tables_host)
    if data.get("ttfs"):
        tables[1:1] = ttfs_tables(data)
    unit = data["data"].get("sample_unit", "utterance")
    if unit != "utterance":  # a TTFS inference is one clip, not an utterance
        for t in tables:
            t.title, t.columns = t.title.replace("utterance", unit), [c.replace("utterance", unit) for c in t.columns]
            t.notes = [n.replace("utterance", unit) for n in t.notes]
    return tables


def ttfs_tables(data: dict) -> list[Table]:
    """Fire-once check and first-spike times per layer; latency and energy next to TNAS-ER's published."""
    t = data["ttfs"]
    k = t["steps_per_window"]
    rows = []
    for r in t["layers"]:
        h = r["first_spike"]
        rows.append([r["name"], r["kind"], f"{r['window'][0]}..{r['window'][1]}", fmt(r["neurons"]),
                     fmt(r["spikes"]), fmt(r["spikes_per_neuron"]), fmt(r["max_spikes_per_neuron"]),
                     fmt(r["multi_spike_neurons"]), fmt(r["never_spiked_neurons"]),
                     DASH if r["mean_activation"] is None else fmt(r["mean_activation"], 3),
                     pct(r["forced_share"]), fmt(h["early"] + h["late"]),
                     "ok" if r["fire_once_ok"] else "VIOLATION: a neuron fired more than once"])
    out = [Table("ttfs_spikes", f"TTFS: spikes per neuron and first-spike times per layer (K = {k})",
                 ["layer", "kind", "window (steps)", "neurons", "spikes", "spikes / neuron / inference",
                  "most spikes of one neuron", "(inference, neuron) > 1 spike", "never spiked",
                  "mean activation q", "forced spikes (q = 0)", "outside window", "fire once"], rows,
                 [f"Each fire-once neuron must spike at most once per inference (checked over "
                  f"{data['data']['utterances']} inference(s)); the forced spike at the window's end makes it "
                  "exactly once. Activation q = K - (first-spike step - window start): q = K at t_min, 0 for the "
                  "forced spike at t_max. Histograms: plots/first_spike_times.png."
                  + ("" if t["fire_once_ok"] else " FIRE-ONCE VIOLATED in: " + ", ".join(t["violations"]) + ".")])]
    ref = t["reference"]
    rows = [[f"published: {ref['what']}", fmt(ref["latency_ms"]), fmt(ref["energy_mj"]), DASH, ref["source"]]]
    for c in t["comparison"]:
        rows.append([f"this network, chip part under {c['profile']} (native estimate)",
                     DASH if c["latency_ms"] is None else fmt(c["latency_ms"]) + proxy_mark(c["latency_proxy"]),
                     NA if c["energy_mj"] is None else fmt(c["energy_mj"]) + proxy_mark(c["energy_proxy"]),
                     fmt(c["steps"]), "latency: " + c["latency_from"]
                     + ("; energy not modelled: " + ", ".join(c["not_modelled"]) if c["not_modelled"] else "")])
    paper = data["estimate"]["paper"]
    if paper is not None:
        rows.append(["this network, paper-style estimate (45 nm: E_MAC x MACs + E_AC x ACs)", DASH,
                     fmt(paper["per_utterance_mj"]), DASH, "energy.mac_pj, energy.ac_pj of " + paper["profile"]])
    out.append(Table("ttfs_reference", "TTFS: latency and energy per inference next to TNAS-ER's published figures",
                     ["estimate", "latency ms", "energy mJ", "chip steps", "from"], rows,
                     [t["note"] + ". * = uses proxy figures (borrowed, estimated or unconfirmed)."]))
    return out
