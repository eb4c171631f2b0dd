"""The `driftwatch` command's frame: the typer app, its consoles and help tidying, errors, main().

Commands live beside it by kind (data.py: files in, verdicts out; generate.py: files generated
from the config; run.py: processes that keep running). Heavy imports (evidently, pandas, uvicorn)
happen inside each command so `driftwatch --help` stays instant. User errors print one clear
message and exit 2, never a traceback.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

from monitor.app.console import OutputConsole

if TYPE_CHECKING:
    from typer._click.core import Context, Parameter



def _unwrap_paragraphs(text: str | None) -> str | None:
    """Help text with each paragraph on one line: rich keeps a docstring's line breaks, which
    would break sentences in the middle (`Exits 0 whether` / `or not drift is found.`)."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _without_placeholder(param: Parameter) -> None:
    """A flag takes no value, so its help shows no `<bool>` type placeholder."""
    if getattr(param, "is_flag", False) and param.metavar is None:
        param.metavar = ""


class _Command(TyperCommand):
    """Every command's help: paragraphs unbroken, flags without a placeholder."""

    def __init__(self, *args: Any, help: str | None = None, params: list[Parameter] | None = None, **kwargs: Any) -> None:
        for param in params or []:
            _without_placeholder(param)
        super().__init__(*args, help=_unwrap_paragraphs(help), params=params, **kwargs)

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            _without_placeholder(option)
        return option


class _Group(TyperGroup):
    """The root command's help, tidied like every command's."""

    def __init__(self, *, params: list[Parameter] | None = None, **kwargs: Any) -> None:
        for param in params or []:
            _without_placeholder(param)
        super().__init__(params=params, **kwargs)

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            _without_placeholder(option)
        return option


class _App(typer.Typer):
    """typer.Typer whose commands are `_Command`s unless a command says otherwise."""

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or _Command, **kwargs)


app = _App(
    name="driftwatch",
    cls=_Group,
    help="Drift monitoring for ML models on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Fitted to a terminal, never wrapped off one (pipes, files, CI logs): see monitor/app/console.py.
console = OutputConsole()
err_console = OutputConsole(stderr=True)


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("driftwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from monitor import __version__ as installed
    typer.echo(f"driftwatch {installed}")
    raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")
    ] = False,
) -> None:
    """Drift monitoring for ML models on Kubernetes."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a user-facing error (no traceback) and exit.

    The message is escaped: it quotes user input and field paths such as `models[churn]`, which
    rich would otherwise take for markup and silently drop.
    """
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_config_or_exit(path: Path):  # type: ignore[no-untyped-def]
    from monitor.core.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
