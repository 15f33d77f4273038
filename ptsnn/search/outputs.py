"""What a search leaves in OUT (all written atomically): ``front.json`` (the Pareto candidates),
``trials.json`` (every trial, for ``ptsnn search export``), ``pareto_energy.png`` / ``pareto_latency.png``
(accuracy against cost) and ``search.html`` (the plots beside the front's table, styled like the report).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from ptsnn.fileio import atomic_write_bytes, atomic_write_text
from ptsnn.search import trial_attrs
from ptsnn.search.space import SearchSpace

FRONT_FORMAT = "ptsnn-search-front"
FORMAT_VERSION = 1
PLOTS = {"pareto_energy": ("energy_uj", "energy per inference (µJ)"),
         "pareto_latency": ("latency_ms", "latency per inference (ms)")}


def _trial_row(t) -> dict[str, Any]:
    a = t.user_attrs
    row = dict(trial=t.number, state=t.state.name, params=dict(t.params))
    for key in trial_attrs.LISTED:
        if key in a:
            row[key] = a[key]
    if isinstance(a.get("config"), dict) and "architecture" in a["config"]:
        row["architecture"] = a["config"]["architecture"]
    return row


def summarize(study, space: SearchSpace, storage: str) -> tuple[dict, dict]:
    """``(front, trials)`` documents of a study."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    front_numbers = {t.number for t in study.best_trials} if any(t.state == TrialState.COMPLETE for t in trials) else set()
    names = [n for n, _ in space.objectives]
    candidates = []
    front_trials = (t for t in trials if t.number in front_numbers and "duplicate_of" not in t.user_attrs)
    for t in sorted(front_trials, key=lambda t: t.number):  # a repeated point is its original's candidate
        row = _trial_row(t)
        row["objectives"] = dict(zip(names, t.values))
        candidates.append(row)
    infeasible = [t for t in trials if t.state == TrialState.PRUNED and "infeasible" in t.user_attrs]
    counts = Counter(t.state.name for t in trials if not t.user_attrs.get("surplus"))
    head = dict(study=study.study_name, storage=storage, family=space.options.family, profile=space.options.profile,
                space=dict(origin=space.origin, sha256=space.sha256),
                objectives=[dict(name=n, direction=d) for n, d in space.objectives],
                trials=dict(total=sum(counts.values()), complete=counts.get("COMPLETE", 0), infeasible=len(infeasible),
                            failed=counts.get("FAIL", 0), running=counts.get("RUNNING", 0),
                            surplus=sum(1 for t in trials if t.user_attrs.get("surplus")),
                            repeated=sum(1 for t in trials if "duplicate_of" in t.user_attrs)),
                infeasible_by_rule=dict(sorted(Counter(t.user_attrs["infeasible"]["rule"] for t in infeasible).items())))
    front = dict(format=FRONT_FORMAT, format_version=FORMAT_VERSION, **head, candidates=candidates)
    all_rows = []
    for t in sorted(trials, key=lambda t: t.number):
        row = _trial_row(t)
        if t.state == TrialState.COMPLETE:
            row["objectives"] = dict(zip(names, t.values))
        all_rows.append(row)
    return front, dict(format="ptsnn-search-trials", format_version=FORMAT_VERSION, **head, rows=all_rows)


def pareto_plot(rows: list[dict], front: list[dict], cost: str, label: str) -> bytes | None:
    """WAR and UAR (%) against one cost, one panel each: every complete trial in grey, the front's candidates
    (non-dominated over all objectives) in colour, labelled by trial number."""
    from ptsnn.report.plots import _figure, _png

    pts = [r for r in rows if r.get("state") == "COMPLETE" and isinstance(r.get("costs", {}).get(cost), (int, float))]
    if not pts:
        return None
    on = [r for r in front if isinstance(r.get("costs", {}).get(cost), (int, float))]
    fig = _figure(10, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (metric, color) in zip(axes, (("war", "#4c72b0"), ("uar", "#c44e52"))):
        ax.scatter([r["costs"][cost] for r in pts], [100 * r[metric] for r in pts], s=16, color="#bbbbbb",
                   label="trial")
        ax.scatter([r["costs"][cost] for r in on], [100 * r[metric] for r in on], s=40, color=color,
                   label="Pareto front (all objectives)")
        for r in on:
            ax.annotate(str(r["trial"]), (r["costs"][cost], 100 * r[metric]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_title(f"{metric.upper()} on the validation split", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("recall (%)")
    return _png(fig)


def front_table(front: dict) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the front (terminal and HTML): objectives and costs, then the architecture (TTFS:
    conv / dense / K; other families: the sampled parameters)."""
    ttfs = front.get("family") == "ttfs"
    cols = ["trial", "WAR %", "UAR %", "energy µJ", "latency ms", "cores", "synops"]
    cols += ["conv", "dense", "K"] if ttfs else ["parameters"]
    rows = []
    for c in front["candidates"]:
        costs, arch = c.get("costs", {}), c.get("architecture", {})
        row = [str(c["trial"]), f"{100 * c['war']:.1f}", f"{100 * c['uar']:.1f}", _num(costs.get("energy_uj")),
               _num(costs.get("latency_ms")), _num(costs.get("cores")), _num(costs.get("synops"))]
        if ttfs:
            conv = " ".join(f"{l['out_channels']}k{l['kernel']}s{l['stride']}{('/' + l['pool']) if l.get('pool') else ''}"
                            for l in arch.get("conv", [])) or "-"
            row += [conv, " ".join(map(str, arch.get("dense", []))) or "-", str(arch.get("steps_per_window", "-"))]
        else:
            row.append(" ".join(f"{k}={v}" for k, v in sorted((c.get("params") or {}).items())) or "-")
        rows.append(row)
    return cols, rows


def _num(v) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    if isinstance(v, float) and not float(v).is_integer() and abs(v) < 1000:
        return f"{v:.4g}"
    return f"{round(v):,}"


def render_html(front: dict, images: dict[str, bytes]) -> str:
    from ptsnn.report.html import CSS

    cols, rows = front_table(front)
    t = front["trials"]
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', "<title>ptsnn search</title>",
             f"<style>{CSS}</style>", "</head>", "<body>", "<h1>ptsnn search</h1>", "<ul>"]
    head = [f"study {front['study']} ({front['storage']}), family {front['family']}, profile {front['profile']}",
            "objectives: " + ", ".join(f"{o['name']} ({o['direction']})" for o in front["objectives"]),
            f"trials: {t['total']} ({t['complete']} complete, {t['infeasible']} infeasible, {t['failed']} failed, "
            f"{t['running']} running)",
            "infeasible by rule: " + (", ".join(f"{k} {v}" for k, v in front["infeasible_by_rule"].items()) or "none")]
    parts += [f"<li>{escape(line)}</li>" for line in head] + ["</ul>", '<h2 id="front">Pareto front</h2>',
                                                              '<table class="front">']
    parts.append("<thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in cols) + "</tr></thead><tbody>")
    for r in rows:
        parts.append("<tr>" + "".join(f'<td class="num">{escape(v)}</td>' if i < 7 else f"<td>{escape(v)}</td>"
                                      for i, v in enumerate(r)) + "</tr>")
    parts.append("</tbody></table>")
    parts.append('<p class="note">WAR/UAR: the ReLU twin (exact TTFS twin) on the validation split after the search '
                 "budget's training; costs per inference from the chip IR on the fast simulator and the profile's "
                 "energy model (docs/search.md).</p>")
    if images:
        parts.append('<h2 id="plots">Plots</h2>')
        for name, png in images.items():
            title = f"accuracy against {PLOTS[name][1]}"
            parts.append(f'<figure id="plot-{escape(name)}"><img alt="{escape(title)}" src="data:image/png;base64,'
                         f'{base64.b64encode(png).decode("ascii")}"><figcaption>{escape(title)}</figcaption></figure>')
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_outputs(study, space: SearchSpace, out: Path, storage: str) -> dict:
    """front.json, trials.json, the Pareto plots and search.html in ``out``; returns the front document."""
    out = Path(out)
    front, trials = summarize(study, space, storage)
    atomic_write_text(out / "front.json", json.dumps(front, indent=1, sort_keys=True) + "\n")
    atomic_write_text(out / "trials.json", json.dumps(trials, indent=1, sort_keys=True) + "\n")
    images = {}
    for name, (cost, label) in PLOTS.items():
        png = pareto_plot(trials["rows"], front["candidates"], cost, label)
        if png is not None:
            atomic_write_bytes(out / f"{name}.png", png)
            images[name] = png
    atomic_write_text(out / "search.html", render_html(front, images))
    return front
