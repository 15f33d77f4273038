"""The report as Markdown: the same tables as the HTML page, plots linked as ``plots/*.png``."""

from __future__ import annotations

from ptsnn.report.plots import PLOT_TITLES
from ptsnn.report.tables import report_tables


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def header_lines(data: dict) -> list[str]:
    b, d = data["bundle"], data["data"]
    lines = [f"bundle: {b['path'] or '(chip graph)'} (converted for {b['converted_for'] or '-'}; front end "
             f"{b['frontend'] or '-'}; {b['flush_steps']} flush steps; graded input {b['input_message_bits']} bits)",
             f"data: {d['source'] or '-'}, {d['utterances']} {d.get('sample_unit', 'utterance')}(s), {d['mean_steps']:.1f} chip steps each "
             f"on average, backend {d['backend']}",
             f"estimate view: {data['estimate']['view']}; schema_version {data['schema_version']}; "
             f"{data['generator']['name']} {data['generator']['version']}"]
    return lines


def render_markdown(data: dict, images: list[str]) -> str:
    out = ["# ptsnn report", ""]
    out += [f"- {line}" for line in header_lines(data)]
    out.append("")
    for t in report_tables(data):
        out += [f"## {t.title}", ""]
        out.append("| " + " | ".join(_cell(c) for c in t.columns) + " |")
        out.append("|" + "|".join("---:" if num else "---" for num in t.numeric()) + "|")
        for row in t.rows:
            out.append("| " + " | ".join(_cell(c) for c in row) + " |")
        out.append("")
        for note in t.notes:
            if note:
                out += [f"> {note}", ""]
    if images:
        out += ["## Plots", ""]
        for name in images:
            out += [f"![{PLOT_TITLES.get(name, name)}](plots/{name}.png)", ""]
    return "\n".join(out).rstrip("\n") + "\n"
