"""The conversion report: a per-layer table of what the converter made (neurons, synapses, weights, delays,
cores, where each layer runs, quantization error), as JSON and Markdown."""

from __future__ import annotations

import json

from ptsnn.chip.ir import ChipGraph


def layer_table(graph: ChipGraph, allocation, errors: dict | None, netx_layers: list[str]) -> list[dict]:
    alloc = {a.layer: a for a in allocation}
    rows = [dict(layer=i.name, type="input", neurons=i.size, synapses=0, weight_range="", exponent=None,
                 max_delay=0, cores=0, where="host", message_bits=i.message_bits) for i in graph.inputs]
    for node in [*graph.populations, *graph.accumulators]:
        edges = graph.incoming(node.name)
        w_min = min(int(e.weight.min()) for e in edges)
        w_max = max(int(e.weight.max()) for e in edges)
        kind = getattr(node, "role", "accumulator")
        row = dict(layer=node.name, type=kind, neurons=node.size, synapses=sum(e.count() for e in edges),
                   weight_range=f"{w_min}..{w_max}", exponent=getattr(node, "scale_exponent", None),
                   max_delay=max(e.max_delay for e in edges),
                   cores=alloc[node.name].cores if node.name in alloc else 0,
                   where="netx" if node.name in netx_layers else "lava")
        if errors and node.name in errors["populations"]:
            e = errors["populations"][node.name]
            row.update(smape=round(e["smape_counts"], 2), saturated_pct=round(e["saturated_pct"], 2),
                       silent_pct=round(e["silent_pct"], 2), rate=round(e["rate_quantized"], 4))
        rows.append(row)
    return rows


def plain_report(rep):
    if rep is None:
        return None
    if hasattr(rep, "__dataclass_fields__"):
        from dataclasses import asdict

        return json.loads(json.dumps(asdict(rep), default=str))
    return json.loads(json.dumps(rep, default=str))


def report_markdown(report: dict) -> str:
    lines = [f"# Conversion report: {report['checkpoint']} -> {report['profile']}", "",
             f"Quantization: {report['quantization']}; cores: {report['total_cores']}", ""]
    cols = ["layer", "type", "neurons", "synapses", "weight_range", "exponent", "max_delay", "cores", "where",
            "smape", "saturated_pct", "silent_pct"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for row in report["layers"]:
        lines.append("| " + " | ".join("" if row.get(c) is None else str(row.get(c)) for c in cols) + " |")
    if report.get("calibration"):
        c = report["calibration"]
        lines += ["", f"Readout: logit SMAPE {c['smape_logits']:.2f} %, float/quantized prediction agreement "
                      f"{c['prediction_agreement_pct']:.1f} %"]
    else:
        lines += ["", "No calibration data (--calib): error and 24-bit overflow estimate not measured."]
    if report.get("host_onnx"):
        h = report["host_onnx"]
        line = f"host.onnx: input {h['input']}, front end {h['frontend']} ({'in the graph' if h['embedded'] else 'not in the graph'})"
        if h.get("check"):
            c = h["check"]
            line += (f"; onnxruntime vs PyTorch on {c['inputs']} inputs: max |scaled diff| "
                     f"{c['max_abs_scaled_diff']:.2g} (tolerance {c['tolerance']:g}), {c['boundary_ties']} boundary ties")
        if h.get("reason"):
            line += f"; {h['reason']}"
        lines += ["", line]
    if report.get("nir"):
        lines += ["", f"NIR: {json.dumps(report['nir'], sort_keys=True)}"]
    return "\n".join(lines) + "\n"
