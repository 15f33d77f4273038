"""The report as one self-contained HTML page: inline CSS, the tables, the PNGs embedded as base64.

No scripts, no external resources (no links, fonts or stylesheets): the page opens offline and can be
mailed around as one file.
"""

from __future__ import annotations

import base64
from html import escape

from ptsnn.report.markdown import header_lines
from ptsnn.report.plots import PLOT_TITLES
from ptsnn.report.tables import report_tables

CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; }
th { background: #eee; } td { text-align: left; } td.num { text-align: right; }
tr.total td { font-weight: bold; border-top: 2px solid #888; }
p.note { font-size: 0.85em; color: #555; max-width: 80em; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #444; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def render_html(data: dict, images: dict[str, bytes]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>ptsnn report</title>", f"<style>{CSS}</style>", "</head>", "<body>", "<h1>ptsnn report</h1>",
             "<ul>"]
    parts += [f"<li>{escape(line)}</li>" for line in header_lines(data)]
    parts.append("</ul>")
    for t in report_tables(data):
        parts.append(f'<h2 id="{escape(t.key)}">{escape(t.title)}</h2>')
        parts.append(f'<table class="{escape(t.key)}">')
        parts.append("<thead><tr>" + "".join(f"<th>{escape(str(c))}</th>" for c in t.columns) + "</tr></thead>")
        parts.append("<tbody>")
        numeric = t.numeric()
        for i, row in enumerate(t.rows):
            parts.append(('<tr class="total">' if i in t.total_rows else "<tr>") + "".join(f'<td class="num">{escape(str(c))}</td>' if num else
                                          f"<td>{escape(str(c))}</td>" for c, num in zip(row, numeric)) + "</tr>")
        parts.append("</tbody></table>")
        parts += [f'<p class="note">{escape(n)}</p>' for n in t.notes if n]
    if images:
        parts.append("<h2 id=\"plots\">Plots</h2>")
        for name, png in images.items():
            title = PLOT_TITLES.get(name, name)
            b64 = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure id="plot-{escape(name)}"><img alt="{escape(title)}" '
                         f'src="data:image/png;base64,{b64}"><figcaption>{escape(title)}</figcaption></figure>')
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
