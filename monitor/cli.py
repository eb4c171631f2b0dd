"""The `driftwatch` command.

Each command is a thin shell over a module that does the work; heavy imports (evidently, pandas,
uvicorn) happen inside the command so `driftwatch --help` stays instant. User errors print one clear
message and exit 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    name="driftwatch",
    help="Drift monitoring for ML models on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Drift monitoring for ML models on Kubernetes."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error (no traceback) and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_config_or_exit(path: Path):  # type: ignore[no-untyped-def]
    from monitor.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="The YAML config to validate.")]) -> None:
    """Validate a config file; every error is reported with the path of the bad field."""
    cfg = load_config_or_exit(config)
    problems = []
    for model in cfg.models:
        if not model.reference.path.exists():
            problems.append(f"models[{model.name}].reference.path: file not found: {model.reference.path}")
    if problems:
        fail(f"{config}: {len(problems)} error(s)\n" + "\n".join(f"  {p}" for p in problems))
    n_cols = sum(len(m.columns) for m in cfg.models)
    console.print(f"[green]ok[/] {config}: {len(cfg.models)} model(s), {n_cols} monitored column(s)")


# -- commands added by the other modules register below this line ---------------------------------


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
