"""A throwaway PostgreSQL server for tests: initdb into a fresh directory, pg_ctl on a free port.

Debian's `postgresql` package provides the binaries (/usr/lib/postgresql/N/bin, newest N is used;
scripts/test.sh installs it); its system service is not used. initdb refuses to run as root, so as
root every server command runs as the `postgres` user (runuser) and the directories are chown'd to
it. The directories are made by this class under /tmp (pytest's tmp_path or a TMPDIR may be 0700 and
root's, so `postgres` could not reach it), and the unix socket lives in a short directory
because a socket path must stay under ~100 bytes. Clients connect over TCP on 127.0.0.1.

The server runs with fsync=off (and initdb --no-sync) for speed: a `stop("immediate")` crash of
the server keeps every committed transaction (the WAL is in the OS's page cache and is replayed at
the next start), but a crash of the whole machine would not.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.ports import free_port


def postgres_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin that has initdb, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if not found:
        return None
    return max(found, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))


class PostgresError(RuntimeError):
    pass


class PostgresServer:
    """One PostgreSQL cluster in its own data directory, trust auth, superuser `postgres`."""

    def __init__(self, bin_dir: Path | None = None, port: int | None = None) -> None:
        found = bin_dir or postgres_bin_dir()
        if found is None:
            raise PostgresError("no /usr/lib/postgresql/*/bin/initdb: install Debian's postgresql package")
        self.bin_dir = Path(found)
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0
        # As root, under /tmp: a TMPDIR (pytest's, root's home) may be closed to `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="dw-pg-", dir="/tmp" if self._as_postgres else None))
        self.data_dir = self.root / "data"
        # The socket dir is /tmp/dw-pgs-XXXX: short whatever TMPDIR is.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="dw-pgs-", dir="/tmp"))
        self.log_file = self.root / "server.log"
        self.running = False
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> str:
        cmd = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if res.returncode != 0:
            raise PostgresError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}\n"
                                f"{self.log_text()[-3000:]}")
        return res.stdout

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> PostgresServer:
        """Start (after a crash stop this replays the WAL first); returns when it accepts connections."""
        if not self.running:
            opts = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", opts, "-w", "-t", "60",
                      "start")
            self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl -m MODE stop: "smart", "fast" (clean shutdown) or "immediate" (crash: no checkpoint)."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown stop mode {mode!r}")
        if self.running:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")
            self.running = False

    def restart(self, mode: str = "fast") -> PostgresServer:
        """Stop with `mode`, then start again on the same port."""
        self.stop(mode)
        return self.start()

    def cleanup(self) -> None:
        """Stop (immediately) and delete the data and socket directories."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()
