"""`ptsnn`: the umbrella command. Each verb is a stage of the pipeline."""

from __future__ import annotations


from ptsnn.cli._app import console, new_app, run_app
from ptsnn.cli.smoke_cmd import smoke

app = new_app("ptsnn", "ptsnn: spiking speech-emotion networks from PyTorch to Loihi-style hardware.")
app.command()(smoke)


def _register_optional() -> None:
    """Sub-apps of later stages; each module owns its verbs."""
    from ptsnn.cli.convert_cmd import convert
    from ptsnn.cli.profiles_cmd import profiles_app

    app.command("convert")(convert)
    from ptsnn.cli.deploy_cmd import run, verify

    app.command("run")(run)
    app.command("verify")(verify)
    from ptsnn.cli.demo_cmd import demo
    from ptsnn.cli.simulate_cmd import simulate

    app.command("simulate")(simulate)
    from ptsnn.cli.report_cmd import report

    app.command("report")(report)

    app.command("demo")(demo)
    from ptsnn.cli.demo_ttfs_cmd import demo_ttfs  # noqa: E402
    app.command("demo-ttfs")(demo_ttfs)

    app.add_typer(profiles_app, name="profiles", help="Hardware profiles: with no command, list the built-in ones; show, check.")

    from ptsnn.cli.model_cmd import model_app
    from ptsnn.cli.train_cmd import train

    app.command("train")(train)
    app.add_typer(model_app, name="model", help="Inspect model configurations: summary.")
    app.add_typer(__import__("ptsnn.cli.search_cmd", fromlist=["search_app"]).search_app, name="search")


_register_optional()


@app.command()
def info() -> None:
    """Versions of the stack ptsnn runs on (Python, torch, numpy, Lava, lava-dl, norse, nir)."""
    import platform
    from importlib import metadata

    console.print(f"python {platform.python_version()}")
    for dist in ("ptsnn", "torch", "numpy", "lava-nc", "lava-dl", "norse", "nir", "onnx", "onnxruntime", "transformers"):
        try:
            console.print(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            console.print(f"{dist} [red]not installed[/]")


def main() -> None:
    run_app(app, "ptsnn")


if __name__ == "__main__":
    main()
