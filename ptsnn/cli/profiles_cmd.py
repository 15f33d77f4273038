"""``ptsnn profiles``: list, show and check hardware profiles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from ptsnn.cli._app import console, new_app

if TYPE_CHECKING:
    from ptsnn.hw_profiles import HardwareProfile

profiles_app = new_app(
    "profiles", "List, show and check hardware profiles (limits, numerics, energy per op)."
)

PROXY_LEGEND = (
    "proxy = borrowed from another chip or generation, estimated, or unconfirmed (see docs/hw_profiles.md)"
)


@profiles_app.callback(invoke_without_command=True, no_args_is_help=False)
def _list(ctx: typer.Context) -> None:
    """With no command: list the built-in profiles."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="built-in hardware profiles", title_justify="left", box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("vendor", min_width=8)
    table.add_column("kind", no_wrap=True)
    for column in ("cores", "neurons/core", "pJ/syn-op", "proxies"):
        table.add_column(column, justify="right", no_wrap=True)
    notes = []
    from ptsnn.hw_profiles import list_profiles, load_profile  # pydantic: imported by the profile verbs only

    for name in list_profiles():
        p = load_profile(name)
        table.add_row(
            Text(name),
            Text(p.profile.vendor),
            Text(p.profile.kind),
            _cell(p.total_cores),
            _cell(p.value("structure.neurons_per_core")),
            Text(_syn_op(p)),
            Text(f"{len(p.proxies())}/{len(list(p.numbers()))}"),
        )
        notes.append(Text(f"{name}: {_notes(p)}"))
    console.print(table)
    console.print()
    for line in notes:  # below the table: a notes column would be unreadable at 80 columns
        console.print(line, highlight=False)
    console.print(Text(f"-: no limit. proxies: numbers marked proxy*. * {PROXY_LEGEND}"), highlight=False)


@profiles_app.command("show")
def show(
    name_or_path: Annotated[str, typer.Argument(metavar="NAME_OR_PATH", help="built-in name or TOML file")],
    as_json: Annotated[bool, typer.Option("--json", help="print machine-readable JSON")] = False,
) -> None:
    """Print one profile in full: every number with unit, source and proxy marker."""
    from ptsnn.hw_profiles import load_profile

    p = load_profile(name_or_path)
    if as_json:
        # Plain stdout (no rich markup/wrapping) so the output parses; it validates back into the schema.
        typer.echo(json.dumps(p.model_dump(mode="json", exclude_none=True), indent=2))
        return
    info = p.profile
    console.print(Text(f"{info.name}: {info.description}", style="bold"), highlight=False)
    yes_no = {True: "yes", False: "no"}
    console.print(
        Text(
            f"vendor {info.vendor}; kind {info.kind}; NIR reachable: {yes_no[info.nir_reachable]}; "
            f"Lava target: {info.lava_target or 'none'}; decay mode: {p.numerics.decay_mode or '-'}; "
            f"float arithmetic: {yes_no[p.numerics.float_arithmetic]}"
        ),
        highlight=False,
    )
    rows = p.summary_rows()
    for section in ("numerics", "structure", "timing", "energy"):
        table = Table(title=Text(f"[{section}]", style="bold"), title_justify="left")
        table.add_column("field", no_wrap=True)
        table.add_column("value", no_wrap=True, justify="right")
        table.add_column("proxy", no_wrap=True)
        table.add_column("source")
        for row in (r for r in rows if r["path"].startswith(section + ".")):
            unit = f" {row['unit']}" if row["unit"] not in ("", "count") else ""
            source = row["source"] + (f" ({row['note']})" if row["note"] else "")
            table.add_row(
                Text(row["path"].split(".", 1)[1]),
                Text(row["value"] + unit),
                Text("proxy*" if row["proxy"] else "", style="yellow"),
                Text(source),
            )
        if table.row_count:
            console.print(table)
    absent = [f"structure.{f}" for f in type(p.structure).model_fields if getattr(p.structure, f) is None]
    if absent:
        console.print(Text(f"no limit set (absent, not checked): {', '.join(absent)}"), highlight=False)
    console.print(Text(f"* {PROXY_LEGEND}"), highlight=False)


@profiles_app.command("check")
def check(
    file: Annotated[str, typer.Argument(metavar="FILE", help="profile TOML file (or built-in name)")],
) -> None:
    """Validate a profile file; print "ok" or one line naming the field and the problem."""
    from ptsnn.hw_profiles import load_profile

    p = load_profile(file)
    n = len(list(p.numbers()))
    console.print(
        Text(f"ok: {file}: profile {p.name!r} ({p.profile.kind}; {n} numbers, {len(p.proxies())} proxy)"),
        highlight=False,
    )


def _cell(value: float | int | None) -> Text:
    return Text("-" if value is None else f"{value:,}")


def _syn_op(p: HardwareProfile) -> str:
    e = p.energy
    item, label = (e.synaptic_op_pj, "") if e.synaptic_op_pj else (e.ac_pj, " (AC)")
    if item is None:
        return "-"
    return f"{item.value:g}{label}{'*' if item.proxy else ''}"


def _notes(p: HardwareProfile) -> str:
    proxies = p.proxies()
    energy = [path for path, _ in p.numbers() if path.startswith("energy.")]
    energy_proxy = [path for path in proxies if path.startswith("energy.")]
    notes = []
    if energy_proxy:
        share = "all" if len(energy_proxy) == len(energy) else f"{len(energy_proxy)} of {len(energy)}"
        notes.append(f"energy figures: {share} proxy*")
    elif energy:
        notes.append("energy figures: published")
    other = [path.split(".", 1)[1] for path in proxies if not path.startswith("energy.")]
    if other:
        notes.append(f"also proxy*: {', '.join(other)}")
    if p.energy.inference_uj is not None:
        notes.append(f"measured {p.energy.inference_uj.value:g} uJ/inference")
    reach = [label for label, ok in (("NIR", p.profile.nir_reachable), ("Lava", p.profile.lava_target)) if ok]
    notes.append(f"reachable via {' and '.join(reach)}" if reach else "no NIR/Lava path")
    return "; ".join(notes)
