"""The `driftwatch` command (entry point `main`); see base.py for its frame."""

from monitor.app.cli import data, generate, labels, references, run  # noqa: F401  (each registers its commands on `app`)
from monitor.app.cli.base import app, main

__all__ = ["app", "main"]
