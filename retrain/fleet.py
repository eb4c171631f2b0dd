"""Retraining in fleet mode: one controller at a time, on the replica that holds the lease.

Every replica runs a `FleetRetrainer`. It tries to take the lease, a PostgreSQL session advisory
lock on a connection of its own, every `fleet.postgres.lease_seconds / 3`; the lock lives as long
as that connection, so a replica that dies or loses the database loses it (the server drops a
silent peer after its TCP keepalives, set to the lease time) and another replica's next try takes
it over. The holder runs a `RetrainController` on `PgHistory` (the shared decisions, jobs and
policy state) and feeds it from the table of evaluations every replica writes: rows with an id
above a cursor kept in PostgreSQL, each turned back into the `WindowVerdict` its evaluator heard.
A decision moves the cursor to its row in the same transaction, so a new holder resumes exactly
after the last decided row: none is decided twice, none skipped (the first holder ever starts
after the newest row, as the embedded controller hears only windows evaluated after its start). The transaction also checks that
the lease is still this replica's (the fence): a holder that lost it without noticing yet cannot
record, so cannot launch, anything.

A launch is recorded before the Job is created, under a name derived from the trigger
(`retrain.run.job_name`): a new holder relaunches a run its predecessor recorded but may not have
created, and the API server answers 409 AlreadyExists if it had (counted as launched).

`POST /v1/alertmanager` works on any replica: the alert is queued in PostgreSQL (once per alert
fingerprint and start) and the holder decides it, at once when the holder received it, else on its
next poll; the answer of a non-holder says `queued`. `GET /v1/models/{m}/retraining` reads the
shared history on every replica; the retraining metrics come from the holder alone (one series).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

from monitor.core.config import Config, RetrainConfig
from monitor.core.pgstore import PgStore, PgUnavailable
from monitor.core.store import EvaluationRow
from monitor.drift.result import result_from_dict
from monitor.runtime import WindowVerdict
from retrain import policy
from retrain.controller import RetrainController, RetrainSnapshot
from retrain.history import Db
from retrain.kubernetes import KubernetesLauncher
from retrain.local import LocalLauncher
from retrain.pghistory import AlreadyDecided, LeaseLost, PgHistory
from retrain.policy import Decision

__all__ = ["LEASE_KEY", "FleetRetrainer"]

log = logging.getLogger("driftwatch.retrain.fleet")

LEASE_KEY = 0x64770003
"""The advisory lock of the retraining lease (one bigint key: classid 0, objid the key)."""
POLL_INTERVAL = 1.0
"""Seconds between the holder's reads of new evaluations and queued alerts."""
BATCH = 500


def verdict_from_row(row: EvaluationRow) -> WindowVerdict:
    """The verdict the owning replica's listeners heard for this stored evaluation."""
    assert row.point is not None, "fleet evaluations always have a grid point"
    kind, point = row.point
    return WindowVerdict(row.model, row.window_start, row.window_end, row.n_records, (kind, float(point)),
                         result_from_dict(row.result), row.evaluated_at)


class FleetRetrainer:
    """The retraining side of one fleet replica (the controller's interface towards the app)."""

    def __init__(
        self,
        config: Config,
        dsn: str,
        *,
        replica: str | None = None,
        lease_seconds: float | None = None,
        poll_interval: float = POLL_INTERVAL,
        clock: Callable[[], float] = time.time,
        kubernetes: Callable[[], KubernetesLauncher] | None = None,
        local: Callable[[], LocalLauncher] | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        assert config.fleet is not None or lease_seconds is not None, "fleet mode, or an explicit lease time"
        self._config = config
        self._dsn = dsn
        self.replica = replica or os.environ.get("HOSTNAME") or f"{socket.gethostname()}-{os.getpid()}"
        self.lease_seconds = float(lease_seconds if lease_seconds is not None else config.fleet.postgres.lease_seconds)  # type: ignore[union-attr]
        self._poll = poll_interval
        self._clock = clock
        self._kubernetes = kubernetes
        self._local = local
        self._timeout = connect_timeout
        self.history = PgHistory(dsn, replica=self.replica, connect_timeout=connect_timeout, fence=self._fence)
        self._evaluations = PgStore(dsn, replica=self.replica, connect_timeout=connect_timeout)
        self._lease: psycopg.Connection[Any] | None = None
        self._lease_pid: int | None = None
        self._controller: RetrainController | None = None
        self._state = threading.Lock()
        """Guards `_lease`/`_controller` (promotion, demotion, reads by request threads)."""
        self._work = threading.Lock()
        """Serializes deciding (the poll thread and a webhook request on the holder)."""
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        """A decision failed outside the poll thread: the poll rebuilds the controller from the store."""
        self._thread: threading.Thread | None = None

    # -- what the app uses (the webhook's Controller protocol, the retraining view, metrics) ------------

    @property
    def holder(self) -> bool:
        return self._controller is not None

    def retrain_config(self, model: str) -> RetrainConfig | None:
        return self._config.retrain_named(model)

    def knows(self, model: str) -> bool:
        return self._config.has_model(model)

    def model_key(self, name: str, namespace: str | None) -> str | None:
        """The key of the configured model an alert's `model` and `namespace` labels name, if any."""
        try:
            return self._config.resolve(name, namespace).key
        except KeyError:
            return None

    def on_alert(self, model: str, alert_fingerprint: str, starts_at: float, *, alertname: str = "",
                 report_url: str | None = None) -> Decision:
        """Queue the alert for the holder; decided here and now when this replica is the holder."""
        now = self._clock()
        alert_id = self.history.queue_alert(model, alert_fingerprint, starts_at, alertname, report_url, now)
        with self._work:
            controller = self._controller
            if controller is not None:
                try:
                    decided = self._decide_alerts(controller)
                except Exception as exc:  # left queued: the poll decides it (on a rebuilt controller)
                    log.warning("retrain_alert_decision_failed replica=%s error=%r", self.replica, str(exc))
                    self._rebuild.set()
                else:
                    if alert_id in decided:
                        return decided[alert_id]
        fp = policy.alert_fingerprint(model, alert_fingerprint, f"{starts_at:.6f}")
        return Decision(model=model, at=now, source="alert", action="none", reason="queued", fingerprint=fp)

    def snapshot(self) -> Mapping[str, RetrainSnapshot]:
        """The retraining metrics, from the holder only (every replica exporting them would count them N times)."""
        controller = self._controller
        if controller is None:
            return {}
        try:
            return controller.snapshot()
        except (PgUnavailable, psycopg.Error) as exc:  # a database outage must not fail the drift metrics' scrape
            log.warning("retrain_snapshot_unavailable replica=%s error=%r", self.replica, str(exc))
            return {}

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> FleetRetrainer:
        self._thread = threading.Thread(target=self._loop, name="retrain-fleet-lease", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.lease_seconds + 30)
        self._demote("stopping")
        self._evaluations.close()
        self.history.close()

    def _loop(self) -> None:
        renew = max(0.05, self.lease_seconds / 3)
        next_lease = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_lease:
                next_lease = now + renew
                if self._lease is None:
                    self._try_take()
                elif not self._lease_alive():
                    self._demote("lease_connection_lost")
            if self._rebuild.is_set() and self._controller is not None:
                self._rebuild.clear()
                alive = self._lease_alive()
                self._demote("decision_failed" if alive else "lease_connection_lost", keep_lease=alive)
            controller = self._controller
            if controller is not None:
                try:
                    with self._work:
                        self._decide_alerts(controller)
                        self._decide_evaluations(controller)
                except Exception as exc:
                    # A decision that failed may yet have committed (a connection lost during COMMIT):
                    # the controller's policy state in memory is no longer known to match the stored
                    # one, so it is rebuilt from the store (or dropped with the lease).
                    if isinstance(exc, (PgUnavailable, LeaseLost, AlreadyDecided, psycopg.Error)):
                        log.warning("retrain_fleet_poll_failed replica=%s error=%r", self.replica, str(exc))
                    else:
                        log.exception("retrain_fleet_poll_error replica=%s", self.replica)
                    alive = self._lease_alive()
                    self._demote("decision_failed" if alive else "lease_connection_lost", keep_lease=alive)
                    self._stop.wait(renew)  # no tight loop on a failure that repeats
            self._stop.wait(min(self._poll, renew))

    # -- the lease ------------------------------------------------------------------------------------

    def _try_take(self) -> None:
        conn = None
        try:
            idle = max(1, math.ceil(self.lease_seconds / 3))
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, math.ceil(self._timeout)),
                application_name=f"driftwatch-lease {self.replica}".strip(),
                # this side notices a dead server within about the lease time...
                keepalives=1, keepalives_idle=idle, keepalives_interval=idle, keepalives_count=2,
                tcp_user_timeout=int(self.lease_seconds * 1000),
            )
            # ...and the server drops a silent holder (so its lock) within about the lease time
            conn.execute(f"SET tcp_keepalives_idle = {idle}; SET tcp_keepalives_interval = {idle};"
                         " SET tcp_keepalives_count = 2")
            held = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()[0])  # type: ignore[index]
            if not held:
                conn.close()
                return
            pid = conn.info.backend_pid
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            log.warning("retrain_lease_unavailable replica=%s error=%s", self.replica, type(exc).__name__)
            return
        with self._state:
            self._lease, self._lease_pid = conn, pid
        self._promote()

    def _promote(self) -> None:
        """Run a controller on the store's state (the lease is held)."""
        try:
            if not self._evaluations.ping():  # its connection creates the evaluations table
                raise PgUnavailable("PostgreSQL unavailable")
            self.history.start_cursor()
            controller = RetrainController(
                self._config, self.history, clock=self._clock,
                kubernetes=self._kubernetes() if self._kubernetes else None,
                local=self._local() if self._local else None,
            )
            controller.start()
        except Exception as exc:
            log.warning("retrain_controller_start_failed replica=%s error=%r", self.replica, str(exc))
            self._demote("controller_start_failed")
            return
        with self._state:
            self._controller = controller
        log.info("retrain_lease_taken replica=%s cursor=%s", self.replica, _safe(self.history.cursor))

    def _lease_alive(self) -> bool:
        conn = self._lease
        if conn is None:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _fence(self, db: Db) -> None:
        """Inside a write: this replica's lease connection holds the lock now, or `LeaseLost`."""
        pid = self._lease_pid
        if pid is None or db.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = 0"
            " AND objid::bigint = ? AND objsubid = 1 AND pid = ? AND granted", (LEASE_KEY, pid),
        ).fetchone() is None:
            raise LeaseLost(f"replica {self.replica} does not hold the retraining lease")

    def _demote(self, reason: str, *, keep_lease: bool = False) -> None:
        """Stop the controller and give up the lease; with `keep_lease` only the controller goes, and
        a new one is started from the store on the spot."""
        with self._state:
            controller, conn = self._controller, self._lease
            self._controller = None
            if not keep_lease:
                self._lease, self._lease_pid = None, None
        if keep_lease:
            conn = None
        if controller is None and conn is None:
            return
        with self._work:  # a decision in flight finishes (or fails on the fence) first
            pass
        if controller is not None:
            controller.stop()  # a launch in flight finishes; the next holder relaunches the rest by name
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        if keep_lease:
            log.warning("retrain_controller_restarting replica=%s reason=%s", self.replica, reason)
            self._promote()
        else:
            log.warning("retrain_lease_released replica=%s reason=%s", self.replica, reason)

    # -- the holder's work -----------------------------------------------------------------------------

    def _decide_evaluations(self, controller: RetrainController) -> None:
        while not self._stop.is_set():
            rows = self._evaluations.evaluations_after(self.history.cursor(), BATCH)
            for row_id, row in rows:
                if self._controller is not controller:
                    return
                with self.history.advancing(cursor=row_id):
                    controller.on_verdict(verdict_from_row(row))
                # a row that led to no recorded decision (an unknown or unconfigured model) moves it alone
                self.history.advance(cursor=row_id, at=self._clock())
            if len(rows) < BATCH:
                return

    def _decide_alerts(self, controller: RetrainController) -> dict[int, Decision]:
        decided: dict[int, Decision] = {}
        for a in self.history.queued_alerts():
            if self._controller is not controller:
                break
            with self.history.advancing(alert=a.id):
                decided[a.id] = controller.on_alert(a.model, a.alert_fingerprint, a.starts_at,
                                                    alertname=a.alertname, report_url=a.report_url)
            self.history.advance(alert=a.id, at=self._clock())
            log.info("retrain_alert_decided replica=%s model=%s alert=%s action=%s reason=%s", self.replica,
                     a.model, a.alert_fingerprint, decided[a.id].action, decided[a.id].reason)
        return decided


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:
        return None
