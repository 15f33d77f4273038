"""Command-line interface (typer + rich). Heavy imports (torch, lava) happen inside commands."""
