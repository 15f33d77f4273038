"""Every command's and subcommand's --help renders its text faithfully: no rich or RST markup residue, no text
eaten as markup, no docstring line breaks carried into the panels."""

import re

import pytest
from typer.testing import CliRunner

BOX = "│╭╮╰╯─"
RESIDUE = ("[/", "[bold", "[red", "[green", "``", ":class:", ":func:", ":meth:", "\\[")


def _apps():
    from ptsnn.cli import convert_cmd, main, train_cmd

    return {"ptsnn": main.app, "ptsnn-convert": convert_cmd.app, "ptsnn-train": train_cmd.app}


def _paths(command, path=()):
    yield list(path)
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _paths(sub, (*path, name))


def _help_pages(width: int):
    import typer

    runner = CliRunner()
    for prog, app in _apps().items():
        for path in _paths(typer.main.get_command(app)):
            r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(width)}, terminal_width=width)
            assert r.exit_code == 0, (prog, path, r.output)
            yield " ".join([prog, *path]), r.output


def _cells(output: str) -> list[str]:
    """The text of each rendered line, box characters and padding removed."""
    return [line.strip(" " + BOX).rstrip() for line in output.splitlines()]


def hard_breaks(output: str, width: int) -> list[str]:
    """Lines that stop well short of the available width mid-sentence while the next line continues it:
    a docstring's own line break carried into the help instead of rich's wrapping."""
    lines = output.splitlines()
    found = []
    for line, nxt in zip(lines, lines[1:]):
        text, following = line.rstrip(" " + BOX), nxt.strip(" " + BOX)
        if not text.strip() or not following or "─" in line + nxt:  # panel borders
            continue
        if re.search(r"[A-Za-z,]$", text) and re.match(r"[a-z(]", following) and len(text) < width - 30:
            found.append(f"{text.strip()!r} / {following!r}")
    return found


def unbalanced(line: str) -> bool:
    depth = 0
    for ch in line:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0:
            return True
    return depth != 0


@pytest.fixture(scope="module")
def pages():
    return {w: dict(_help_pages(w)) for w in (80, 100, 400)}


def test_every_help_page_is_free_of_markup_residue_and_hard_breaks(pages):
    assert len(pages[100]) >= 15  # every verb and subcommand of the three programs
    problems = []
    for width, rendered in pages.items():
        for name, out in rendered.items():
            problems += [f"{name}: residue {r!r}" for r in RESIDUE if r in out]
            if width >= 100:  # at 80 columns a bracketed phrase may wrap over two lines
                problems += [f"{name}: unbalanced brackets in {c!r}" for c in _cells(out) if unbalanced(c)]
            problems += [f"{name} (width {width}): hard break {b}" for b in hard_breaks(out, width)]
            # rich cuts a word longer than the help column with an ellipsis: the reader loses it
            problems += [f"{name} (width {width}): cut word in {c!r}" for c in _cells(out) if "…" in c]
    assert not problems, "\n".join(problems)


def test_help_text_is_shown_whole(pages):
    wide = pages[400]
    # square brackets are text, not rich markup
    assert "Input .npy: [batch, *shape, time] or [*shape, time]." in wide["ptsnn simulate"]
    # a docstring paragraph is one line when the terminal is wide enough
    assert ("Run the bundle's chip part on the fast simulator over the data and report, per layer and in total: "
            "neurons, synapses,") in wide["ptsnn report"]
    assert "for the paper preset also the deviation" in wide["ptsnn model summary"]
    assert " list" not in wide["ptsnn profiles"].split("Commands")[1]  # no `list` verb: the bare command lists


def test_detectors_catch_what_they_are_for():
    assert hard_breaks(" Build a network and run it in Lava's CPU\n simulation (fixed_pt).\n", 100)
    assert not hard_breaks(" A line that rich wrapped at the edge of the terminal, as it should, long enough to\n"
                           " continue here.\n", 100)
    assert unbalanced("Input .npy:  or [*shape, time") and not unbalanced("[default: 8]")
