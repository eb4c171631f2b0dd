"""Running a model's retraining command as a local subprocess (the embedded default and the demo).

The command runs in its own process group (so a timeout reaches everything it spawned: SIGTERM,
then SIGKILL after a grace period), with the run's DRIFTWATCH_* environment, its output appended
to `<log_dir>/<run name>.log`. A tiny `sh` wrapper writes the exit status to `<run name>.exit`,
so a restarted monitor can still learn how a run it no longer parents ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from monitor.core.config import LocalLauncher as LocalConfig
from retrain.run import Run

log = logging.getLogger("driftwatch.retrain.local")

_WRAPPER = '"$@"; echo $? > "$0"'
"""`sh -c` script: $0 is the status file, "$@" the user's command (no quoting games)."""


@dataclass(frozen=True)
class Started:
    pid: int
    pid_created: float
    log_path: str


OnOutcome = Callable[[str, str, int | None, str | None], None]
"""(run name, outcome, exit code, detail)."""


def status_path(log_path: str | Path) -> Path:
    return Path(log_path).with_suffix(".exit")


def _read_status(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class LocalLauncher:
    kind = "local"

    def __init__(self, *, grace: float = 10.0, poll_interval: float = 0.2,
                 clock: Callable[[], float] = time.time) -> None:
        self.grace = grace
        self.poll_interval = poll_interval
        self._clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()  # launches come from a pool thread while stop() runs elsewhere

    def launch(self, run: Run, cfg: LocalConfig, on_outcome: OnOutcome,
               on_started: Callable[[Started], None] | None = None) -> Started:
        """Start the command; `on_started` runs before its end (or timeout) can reach `on_outcome`."""
        if cfg.log_dir is None:
            raise ValueError("local.log_dir is unresolved (Config.local_log_dir resolves it)")
        log_dir = Path(cfg.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{run.name}.log"
        status = status_path(log_path)
        status.unlink(missing_ok=True)
        env = {**os.environ, **run.env()}
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, str(status), *cfg.command],
                cwd=cfg.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        created = _create_time(proc.pid) or self._clock()
        started = Started(pid=proc.pid, pid_created=created, log_path=str(log_path))
        log.info("local_started run=%s model=%s pid=%d log=%s", run.name, run.model, proc.pid, log_path)
        if on_started is not None:
            on_started(started)
        self._spawn(run.name, lambda: self._follow_child(run.name, proc, status, self._clock() + cfg.timeout, on_outcome))
        return started

    def resume(self, name: str, pid: int | None, pid_created: float | None, log_path: str | None,
               started_at: float, cfg: LocalConfig, on_outcome: OnOutcome) -> None:
        """Follow a run started by an earlier monitor process (it keeps running across restarts)."""
        status = status_path(log_path) if log_path else None
        proc = _same_process(pid, pid_created)
        if proc is None:
            code = _read_status(status) if status else None
            self._report(name, None if code is None else code, on_outcome, unknown="ended while the monitor was down")
            return
        self._spawn(name, lambda: self._follow_orphan(name, proc, status, started_at + cfg.timeout, on_outcome))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following; running commands are left alone and resumed by the next start."""
        self._stop.set()
        with self._threads_lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout)

    # -- internals --------------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        """Follow in a thread; one spawned after stop() sees the stop flag and leaves at once."""
        t = threading.Thread(target=target, name=f"retrain-local-{name}", daemon=True)
        with self._threads_lock:
            t.start()  # started before it is listed: stop() may join anything it finds listed
            self._threads.append(t)

    def _follow_child(self, name: str, proc: subprocess.Popen[bytes], status: Path, deadline: float,
                      on_outcome: OnOutcome) -> None:
        while not self._stop.is_set():
            try:
                code = proc.wait(timeout=self.poll_interval)
            except subprocess.TimeoutExpired:
                if self._clock() >= deadline:
                    self._kill_group(proc.pid, lambda t: _wait_child(proc, t))
                    on_outcome(name, "deadline_exceeded", proc.returncode, "timeout: killed")
                    return
                continue
            # The wrapper's own status is the command's; a signal kills the wrapper too (code < 0).
            recorded = _read_status(status)
            self._report(name, recorded if recorded is not None else code, on_outcome)
            return

    def _follow_orphan(self, name: str, proc: psutil.Process, status: Path | None, deadline: float,
                       on_outcome: OnOutcome) -> None:
        while not self._stop.is_set():
            try:
                code = proc.wait(timeout=self.poll_interval)
            except psutil.TimeoutExpired:
                if self._clock() >= deadline:
                    self._kill_group(proc.pid, lambda t: _wait_psutil(proc, t))
                    on_outcome(name, "deadline_exceeded", None, "timeout: killed")
                    return
                continue
            recorded = _read_status(status) if status else None
            self._report(name, recorded if recorded is not None else code, on_outcome,
                         unknown="exit status unknown (not our child)")
            return

    def _report(self, name: str, code: int | None, on_outcome: OnOutcome, unknown: str = "exit status unknown") -> None:
        if code is None:
            on_outcome(name, "failed", None, unknown)
        elif code == 0:
            on_outcome(name, "succeeded", 0, None)
        else:
            on_outcome(name, "failed", code, f"exit status {code}")

    def _kill_group(self, pgid: int, wait_leader: Callable[[float], bool]) -> None:
        """SIGTERM the whole process group, SIGKILL whatever outlives the grace period."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            log.warning("local_timeout pgid=%d signal=%s", pgid, sig.name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            if _group_gone(pgid, wait_leader, self.grace):
                return


def _group_gone(pgid: int, wait_leader: Callable[[float], bool], timeout: float) -> bool:
    """Reap the group leader, then wait until no process is left in the group."""
    deadline = time.monotonic() + timeout
    wait_leader(timeout)
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _wait_child(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _wait_psutil(proc: psutil.Process, timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except psutil.TimeoutExpired:
        return False


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: int | None, created: float | None) -> psutil.Process | None:
    """The recorded process if it still runs (same pid AND start time: pids get reused)."""
    if pid is None or created is None:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - created) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None
