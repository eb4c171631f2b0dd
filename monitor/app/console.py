"""Rich consoles for driftwatch's own output: fitted to a terminal, never wrapped anywhere else.

Off a terminal (a pipe, a file, CI logs, a test runner) rich would wrap at `COLUMNS` or 80 columns,
splitting paths, notes and table cells across lines where `grep` and readers cannot find them. A
`Console` here decides at every print, from the stream it writes to at that moment, so a console
created at import time still does the right thing when a test runner swaps `sys.stdout`.
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

# Wide enough that no line driftwatch prints reaches it; nothing printed is padded to it (tables are
# as wide as their content, text is never justified), so it costs nothing.
UNWRAPPED_WIDTH = 1_000_000


class OutputConsole(Console):
    """A rich Console that wraps at the terminal's width on a terminal and nowhere else.

    "On a terminal" means the stream is a TTY: `FORCE_COLOR` may colour a pipe, it does not make
    it narrow. Off a terminal the console is `UNWRAPPED_WIDTH` columns wide.
    """

    def attached_to_terminal(self) -> bool:
        """Whether the stream this console writes to now is a TTY."""
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty is not None and isatty())
        except ValueError:  # a closed stream
            return False

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.attached_to_terminal() else ConsoleDimensions(UNWRAPPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]
