"""``ptsnn search``: hardware-aware architecture search (Optuna NSGA-II), and ``ptsnn search export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ptsnn.cli._app import console, new_app

search_app = new_app("ptsnn search", "Hardware-aware architecture search (NSGA-II on Optuna): WAR, UAR and chip "
                                     "costs as objectives; export a candidate.")


@search_app.callback(invoke_without_command=True)
def search(
    ctx: typer.Context,
    space: Annotated[Optional[str], typer.Option(
        "--space", help="built-in space name (ttfs_small, ttfs_default, ...) or a search-space .toml")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="output folder (study.db, trials/, front.json, plots)")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", help="total trials of the study (default: the space's search.trials)")] = None,
    workers: Annotated[int, typer.Option("--workers", help="worker processes on this machine, all joining the study")] = 1,
    storage: Annotated[Optional[str], typer.Option(
        "--storage", help="Optuna storage: an SQLAlchemy URL (sqlite:///..., postgresql://user@host/db) or "
                          "journal:PATH (a journal file on a shared file system); default sqlite:///OUT/study.db")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="study name (default: the space's search.study)")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="sampler seed (trial n trains with seed + n)")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="hardware profile name or file (default: the space's)")] = None,
    heartbeat: Annotated[int, typer.Option(
        "--heartbeat", help="seconds between trial heartbeats on RDB storages; a trial silent for 3x this is failed "
                            "and retried (0: off)")] = 60,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display or table")] = False,
) -> None:
    """Search architectures of the space's family: each trial samples a candidate, checks it against the
    profile's design rules (an infeasible one is recorded with its rule and never trained), trains it briefly,
    scores WAR/UAR on the validation split and costs it on the chip (energy, latency, cores, synops). Rerunning
    the same command resumes the study. Writes OUT/front.json, OUT/trials.json, OUT/pareto_*.png,
    OUT/search.html and OUT/trials/N/ (log.txt, checkpoint)."""
    if ctx.invoked_subcommand is not None:
        return
    from ptsnn.errors import InputError

    if space is None or out is None:
        raise InputError("ptsnn search needs --space NAME|PATH and --out FOLDER (or a command: export)")
    from ptsnn.search.engine import describe_storage, default_storage, run_search
    from ptsnn.search.outputs import write_outputs
    from ptsnn.search.space import load_space

    sp = load_space(space)
    overrides = {k: v for k, v in dict(study=study, seed=seed, profile=profile).items() if v is not None}
    if overrides:
        sp = _with_options(sp, overrides)
    from ptsnn.hw_profiles.loader import load_profile

    load_profile(sp.options.profile)  # a bad profile fails before any study is made
    url = storage or default_storage(out)
    total = trials or sp.options.trials
    from ptsnn.fileio import output_folder

    with output_folder(out):  # a search that cannot start leaves no empty OUT behind
        if quiet:
            result = run_search(sp, out, trials=total, workers=workers, storage_url=url, heartbeat_s=heartbeat)
        else:
            with _Progress(total) as progress:
                result = run_search(sp, out, trials=total, workers=workers, storage_url=url, heartbeat_s=heartbeat,
                                    on_progress=progress.update)
        front = write_outputs(result, sp, out, describe_storage(url))
    if not quiet:
        _print_front(front, out)


def _with_options(sp, overrides: dict):
    """The space with [search] fields replaced (a CLI override is part of the study's identity)."""
    from ptsnn.search.space import SearchSpace, SpaceFile

    data = sp.data.model_dump()
    data["search"].update(overrides)
    from pydantic import ValidationError

    from ptsnn.errors import InputError
    from ptsnn.safeio import describe_validation

    try:
        model = SpaceFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"command line: {describe_validation(exc)}") from None
    return SearchSpace(model, sp.origin, sp.text + "\n# overrides: " + repr(sorted(overrides.items())) + "\n")


class _Progress:
    """Trials done / total, best WAR and UAR so far, front size (rich)."""

    def __init__(self, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.total = total
        self.bar = Progress(TextColumn("search"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=console, transient=False)
        self.task = None

    def __enter__(self):
        self.bar.__enter__()
        self.task = self.bar.add_task("", total=self.total)
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def update(self, study) -> None:
        from optuna.trial import TrialState

        trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
        done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        complete = [t for t in done if t.state == TrialState.COMPLETE]
        war = max((t.user_attrs.get("war", 0) for t in complete), default=None)
        uar = max((t.user_attrs.get("uar", 0) for t in complete), default=None)
        front = len(study.best_trials) if complete else 0
        desc = (f"best WAR {100 * war:.1f} %, UAR {100 * uar:.1f} %, front {front}" if complete else "no complete trial yet")
        desc += f", infeasible {len(done) - len(complete)}"
        self.bar.update(self.task, completed=min(len(done), self.total), description=desc)


def _print_front(front: dict, out: Path) -> None:
    from rich.table import Table

    from ptsnn.search.outputs import front_table

    cols, rows = front_table(front)
    table = Table(title=f"Pareto front ({len(rows)} of {front['trials']['complete']} complete trials)")
    for i, c in enumerate(cols):
        table.add_column(c, justify="right" if i < 7 else "left")
    for r in rows:
        table.add_row(*r)
    console.print(table)
    rules = ", ".join(f"{k} {v}" for k, v in front["infeasible_by_rule"].items())
    if rules:
        console.print(f"infeasible: {rules}")
    console.print(f"front: {out / 'front.json'}; page: {out / 'search.html'}")


@search_app.command("export")
def export(
    run: Annotated[Path, typer.Argument(help="the search's output folder")],
    trial: Annotated[int, typer.Option("--trial", help="trial number (see front.json)")],
    out: Annotated[Path, typer.Option("--out", help="checkpoint to write (ptsnn-convert takes it)")],
) -> None:
    """Write trial N's checkpoint (sha256 checked against the study's record, loaded as ptsnn-convert will)."""
    from ptsnn.search.export import export_checkpoint

    path = export_checkpoint(run, trial, out)
    console.print(f"checkpoint of trial {trial}: {path}")
