"""`python -m monitor.app.cli`."""

from monitor.app.cli import main

main()
