"""The ``budcore`` command line (typer + rich)."""

from budcore.cli.app import app, main

__all__ = ["app", "main"]
