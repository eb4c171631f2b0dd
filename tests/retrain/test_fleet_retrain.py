"""Retraining in fleet mode (retrain/fleet.py), with the real parts: a PostgreSQL server shared by
two `FleetRetrainer`s (one per replica) and the Kubernetes test API server (kube_api.py) reached by
the official client over HTTP. Evaluations are fed as the monitor's replicas store them
(`PgStore.add_evaluation`); no Kafka is needed.

Shown: one replica holds the lease at a time; the holder launches one Job for a sustained drift;
killing the holder's lease mid-launch hands over within the lease time without a second create;
an alert posted to the non-holder's webhook launches once; a database crash-restart re-takes the
lease and launches nothing twice; every evaluation is decided exactly once across the handovers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kube_api import FakeKubeAPI, running_api

from monitor.core.config import Config, parse_config
from monitor.core.pgstore import PgStore
from monitor.core.store import EvaluationRow
from monitor.drift import DatasetResult, DriftResult, FeatureResult, QualityResult
from retrain.fleet import FleetRetrainer
from retrain.history import History
from retrain.kubernetes import KubernetesLauncher, Retry
from retrain.local import LocalLauncher
from retrain.webhook import router
from tests.infra.postgres import PostgresServer

LEASE = 1.5
TEMPLATE = {"apiVersion": "batch/v1", "kind": "Job",
            "spec": {"template": {"spec": {"containers": [{"name": "train", "image": "ghcr.io/x/train:1"}]}}}}
T0 = 1795348800.0


def fleet_config(**wine_retrain: Any) -> Config:
    feature = [{"name": "x", "type": "numeric", "critical": True}, {"name": "y", "type": "numeric"}]
    wine = {"launcher": "kubernetes", "consecutive_windows": 2, "min_records": 100, "cooldown": "1h",
            "max_active": 1, "kubernetes": {"namespace": "ml", "template": TEMPLATE}, **wine_retrain}
    return parse_config({
        "fleet": {"kafka": {"bootstrap_servers": "127.0.0.1:9"}, "postgres": {"lease_seconds": LEASE}},
        "models": [
            {"name": "wine", "features": feature, "reference": {"path": "wine.csv"}, "retrain": wine},
            {"name": "plain", "features": feature, "reference": {"path": "plain.csv"}},
        ],
    })


def _feature(name: str, drifted: bool) -> FeatureResult:
    return FeatureResult(name=name, kind="numeric", role="feature", method="ks", score=0.01 if drifted else 0.5,
                         p_value=0.01 if drifted else 0.5, threshold=0.05, drifted=drifted, n_reference=500,
                         n_current=500, quality=QualityResult(0.0, 0.0, 0.0, 0.0, 500))


def evaluation(model: str, i: int, drifted: bool = True) -> EvaluationRow:
    """The i-th 500-record window of `model`, as a replica stores it."""
    result = DriftResult(
        dataset=DatasetResult(drift_share=1.0 if drifted else 0.0, drifted=drifted, n_drifted=2 if drifted else 0,
                              n_features=2, n_reference=500, n_current=500),
        features={"x": _feature("x", drifted), "y": _feature("y", drifted)},
    )
    return EvaluationRow(model, T0 + 300 * i, T0 + 300 * (i + 1), 500 * i + 1, 500 * (i + 1), 500 * i + 1,
                         500 * (i + 1), 500, result.to_dict(), T0 + 300 * (i + 1) + 1, ("count", 500 * (i + 1)))


def wait_for(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> float:
    """Seconds it took for `pred` to hold."""
    start = time.monotonic()
    while not pred():
        assert time.monotonic() - start < timeout, f"{what} not reached in {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - start


class Creates:
    """Counts the fake API server's answers to Job creates (201 created, 409 already exists)."""

    def __init__(self, api: FakeKubeAPI) -> None:
        self.codes: list[int] = []
        self._lock = threading.Lock()
        inner = api.create

        def create(ns: str, body: Any) -> tuple[int, dict[str, Any]]:
            code, out = inner(ns, body)
            with self._lock:
                self.codes.append(code)
            return code, out

        api.create = create  # type: ignore[method-assign]

    @property
    def created(self) -> int:
        return self.codes.count(201)


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with running_api() as server:
        yield server


@pytest.fixture
def creates(api: FakeKubeAPI) -> Creates:
    return Creates(api)


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PgStore]:
    s = PgStore(postgres_dsn, replica="feeder")
    yield s
    s.close()


@pytest.fixture
def make_replica(postgres_dsn: str, api: FakeKubeAPI) -> Iterator[Callable[..., FleetRetrainer]]:
    made: list[FleetRetrainer] = []

    def make(name: str, config: Config | None = None) -> FleetRetrainer:
        def kube() -> KubernetesLauncher:
            return KubernetesLauncher(api.api_client(), retry=Retry(attempts=4, base=0.05, cap=0.2, timeout=(1.0, 5.0)),
                                      watch_timeout=5, poll_interval=0.2)

        r = FleetRetrainer(config or fleet_config(), postgres_dsn, replica=name, poll_interval=0.05,
                           kubernetes=kube, local=lambda: LocalLauncher(poll_interval=0.05), connect_timeout=2.0)
        made.append(r.start())
        return r

    yield make
    for r in made:
        r.stop()


def add(store: PgStore, model: str, i: int, drifted: bool = True) -> None:
    assert store.add_evaluation(evaluation(model, i, drifted), [], "driftwatch-events")


def holders(*replicas: FleetRetrainer) -> list[FleetRetrainer]:
    return [r for r in replicas if r.holder]


def the_holder(*replicas: FleetRetrainer, timeout: float = 10.0) -> FleetRetrainer:
    wait_for(lambda: len(holders(*replicas)) == 1, timeout, "one leaseholder")
    return holders(*replicas)[0]


def window_decisions(history: History, model: str = "wine") -> list[Any]:
    return [d for d in history.recent_decisions(model, 1000) if d.source == "window"]


def crash(postgres_server: PostgresServer, replica: FleetRetrainer) -> None:
    """The holder is cut off abruptly: its lease loop stops dead (it never re-takes the lease nor
    stops its controller, whose threads go on like a partitioned pod's) and the server ends its
    lease connection, as when a pod dies or its network is cut."""
    pid = replica._lease_pid
    assert pid is not None
    replica._stop.set()
    assert replica._thread is not None
    replica._thread.join(5)
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def test_one_replica_holds_the_lease_and_launches_one_job_for_a_sustained_drift(
        make_replica, store: PgStore, api: FakeKubeAPI, creates: Creates) -> None:
    a, b = make_replica("replica-a"), make_replica("replica-b")
    holder = the_holder(a, b)
    other = b if holder is a else a
    for _ in range(int(LEASE / 0.05)):  # over a whole lease time: never two holders
        assert len(holders(a, b)) == 1
        time.sleep(0.05)
    assert other.snapshot() == {} and "wine" in holder.snapshot()  # the metrics come from the holder alone

    for i in range(4):  # a drift held over 4 windows: the streak of 2 launches once
        add(store, "wine", i)
    add(store, "plain", 0)
    wait_for(lambda: len(api.jobs("ml")) == 1, what="the Job")
    wait_for(lambda: len(window_decisions(holder.history)) == 4, what="every window decided")
    time.sleep(0.5)
    assert creates.codes == [201]
    assert [d.reason for d in reversed(window_decisions(holder.history))] == [
        "streak_building", "drift_streak", "streak_building", "max_active"]
    # the retraining view reads the shared history: the non-holder shows what the holder decided
    jobs = other.history.jobs(model="wine")
    assert [j.name for j in jobs] == [j["metadata"]["name"] for j in api.jobs("ml")]
    assert window_decisions(other.history) == window_decisions(holder.history)
    assert other.history.cursor() == holder.history.cursor() > 0


def test_a_holder_crashing_mid_launch_hands_over_without_a_second_create(
        make_replica, postgres_server: PostgresServer, store: PgStore, api: FakeKubeAPI, creates: Creates) -> None:
    a, b = make_replica("replica-a"), make_replica("replica-b")
    first = the_holder(a, b)
    second = b if first is a else a
    api.inject("POST", status=None, delay=1.0)  # the create is in flight when the lease goes
    add(store, "wine", 0)
    add(store, "wine", 1)
    wait_for(lambda: len(first.history.jobs(active_only=True)) == 1, what="the launch recorded")
    crash(postgres_server, first)
    took = wait_for(lambda: second.holder, timeout=3 * LEASE, what="the takeover")
    assert took <= LEASE + 0.5, f"took {took:.2f}s over a {LEASE}s lease"
    wait_for(lambda: len(api.jobs("ml")) == 1, what="the Job")
    wait_for(lambda: [j.state for j in second.history.jobs()] == ["running"], what="the run running")

    for i in range(2, 5):  # the new holder resumes after the last decided row
        add(store, "wine", i)
    wait_for(lambda: len(window_decisions(second.history)) == 5, what="every window decided")
    time.sleep(0.5)
    assert creates.created == 1 and set(creates.codes) <= {201, 409}
    decided = window_decisions(second.history)
    assert len(decided) == 5  # each evaluation decided exactly once across the handover
    assert [d.action for d in decided].count("launch") == 1


def test_an_alert_posted_to_the_non_holder_launches_once(
        make_replica, store: PgStore, api: FakeKubeAPI, creates: Creates) -> None:
    a, b = make_replica("replica-a"), make_replica("replica-b")
    holder = the_holder(a, b)
    other = b if holder is a else a
    payload = {
        "version": "4", "status": "firing", "receiver": "driftwatch", "alerts": [{
            "status": "firing", "labels": {"alertname": "DriftwatchDatasetDrift", "model": "wine",
                                           "driftwatch_action": "retrain", "severity": "critical"},
            "annotations": {}, "startsAt": "2026-12-05T10:00:00Z", "fingerprint": "a1b2c3d4e5f60718",
        }],
    }
    apps = {}
    for r in (holder, other):
        app = FastAPI()
        app.include_router(router(r, None))
        apps[r.replica] = TestClient(app)
    resp = apps[other.replica].post("/v1/alertmanager", json=payload)
    assert resp.status_code == 200, resp.text
    assert [d["reason"] for d in resp.json()["decisions"]] == ["queued"]
    wait_for(lambda: len(api.jobs("ml")) == 1, what="the Job")
    alerts = [d for d in holder.history.recent_decisions("wine") if d.source == "alert"]
    assert [(d.action, d.reason) for d in alerts] == [("launch", "alert")]

    # the same alert again, to both replicas (Alertmanager repeats it): no second decision or launch
    again = apps[holder.replica].post("/v1/alertmanager", json=payload).json()
    assert [d["reason"] for d in again["decisions"]] == ["queued"]  # already decided: nothing new to decide
    apps[other.replica].post("/v1/alertmanager", json=payload)
    time.sleep(0.5)
    assert creates.codes == [201]
    assert len([d for d in holder.history.recent_decisions("wine") if d.source == "alert"]) == 1


def test_an_alert_to_a_holder_cut_off_from_its_lease_is_decided_by_the_next(
        make_replica, postgres_server: PostgresServer, api: FakeKubeAPI, creates: Creates) -> None:
    """The fence: a replica whose lease is gone cannot record a decision, even if it never notices."""
    a, b = make_replica("replica-a"), make_replica("replica-b")
    first = the_holder(a, b)
    second = b if first is a else a
    crash(postgres_server, first)
    d = first.on_alert("wine", "ffee", T0, alertname="DriftwatchDatasetDrift")
    assert (d.action, d.reason) == ("none", "queued")
    wait_for(lambda: second.holder, timeout=3 * LEASE, what="the takeover")
    wait_for(lambda: len(api.jobs("ml")) == 1, what="the Job")
    time.sleep(0.3)
    assert creates.codes == [201]
    assert [(x.action, x.reason) for x in second.history.recent_decisions("wine")] == [("launch", "alert")]


def test_a_database_restart_retakes_the_lease_and_launches_nothing_twice(
        make_replica, postgres_server: PostgresServer, store: PgStore, api: FakeKubeAPI, creates: Creates) -> None:
    a, b = make_replica("replica-a"), make_replica("replica-b")
    first = the_holder(a, b)
    add(store, "wine", 0)
    add(store, "wine", 1)
    wait_for(lambda: len(api.jobs("ml")) == 1, what="the Job")
    wait_for(lambda: [j.state for j in first.history.jobs()] == ["running"], what="the run running")

    old_lease = first._lease_pid
    postgres_server.restart("immediate")  # a crash: every connection (and so the lease) is gone
    wait_for(lambda: any(r._lease_pid not in (None, old_lease) for r in (a, b)), timeout=6 * LEASE,
             what="the lease re-taken")
    holder = the_holder(a, b)
    for i in range(2, 5):
        add(store, "wine", i)
    wait_for(lambda: len(window_decisions(holder.history)) == 5, what="every window decided")
    api.complete("ml", api.jobs("ml")[0]["metadata"]["name"])
    wait_for(lambda: [j.state for j in holder.history.jobs()] == ["succeeded"], what="the outcome")
    time.sleep(0.5)
    assert len(holders(a, b)) == 1
    assert creates.created == 1
    assert [d.action for d in window_decisions(holder.history)].count("launch") == 1


class _FleetMonitorStub:
    """What the app's retraining view and metrics ask of a fleet monitor (models known, nothing owned)."""

    ready = True
    profile_errors: ClassVar[dict[str, str]] = {}

    def snapshot(self) -> dict[str, Any]:
        return {"wine": None, "plain": None}

    def has_model(self, name: str) -> bool:
        return name in self.snapshot()

    def owned_snapshot(self) -> dict[str, Any]:
        return {}

    def membership(self) -> dict[str, Any]:
        return {}


def test_every_replica_serves_the_retraining_view_from_postgres(
        make_replica, store: PgStore, api: FakeKubeAPI, creates: Creates) -> None:
    from monitor.app.api import create_app

    a, b = make_replica("replica-a"), make_replica("replica-b")
    holder = the_holder(a, b)
    add(store, "wine", 0)
    add(store, "wine", 1)
    wait_for(lambda: len(api.jobs("ml")) == 1, what="the Job")
    name = api.jobs("ml")[0]["metadata"]["name"]
    wait_for(lambda: [j.state for j in holder.history.jobs()] == ["running"], what="the run running")
    views = []
    for r in (a, b):
        client = TestClient(create_app(fleet_config(), monitor=_FleetMonitorStub(), controller=r, listeners=[]))
        resp = client.get("/v1/models/wine/retraining")
        assert resp.status_code == 200, resp.text
        views.append(resp.json())
    assert views[0] == views[1]
    assert views[0]["enabled"] is True
    assert [j["name"] for j in views[0]["jobs"]] == [name]
    assert [d["reason"] for d in views[0]["decisions"]] == ["drift_streak", "streak_building"]


def _decide(history: History, model: str, i: int, action: str = "none", reason: str = "no_drift") -> None:
    from retrain.policy import Decision, ModelState

    history.record(Decision(model, T0 + i, "window", action, reason), ModelState(), None, None)  # type: ignore[arg-type]


def test_pg_history_is_history_on_postgres(postgres_dsn: str) -> None:
    """History's own behaviour (bounded list, counts that never go back, runs recorded once) on PostgreSQL,
    plus what the fleet adds: a decision moves the cursor in its transaction, once."""
    from retrain.pghistory import AlreadyDecided, LeaseLost, PgHistory
    from retrain.policy import Decision, ModelState, Trigger
    from retrain.run import Run

    evaluations = PgStore(postgres_dsn)
    assert evaluations.ping()  # its first connection creates the evaluations table
    evaluations.close()
    history = PgHistory(postgres_dsn, keep_decisions=10)
    history.start_cursor()
    try:
        for i in range(25):
            _decide(history, "wine", i, *(("skip", "cooldown") if i % 5 == 0 else ("none", "no_drift")))
        _decide(history, "churn", 0)
        assert [d.at - T0 for d in history.recent_decisions("wine", limit=1000)] == list(range(24, 14, -1))
        assert history.decision_counts() == {"wine": {"no_drift": 20, "cooldown": 5}, "churn": {"no_drift": 1}}

        trigger = Trigger(source="window", window_start=T0, window_end=T0 + 600, drift_share=1.0,
                          drifted_features=("x",), report_url=None, reason="drift held")
        run = Run(name="wine-retrain-0123456789", model="wine", fingerprint="0123456789ab", trigger=trigger, reference="w.csv")
        decision = Decision("wine", T0 + 30, "window", "launch", "drift_streak", run.fingerprint, trigger)
        history.record(decision, ModelState(last_trigger=T0 + 30), run, "kubernetes", "ml")
        assert history.active_counts() == {"wine": 1} and history.has_fingerprint(run.fingerprint)
        assert not history.adopt(run, "kubernetes", "ml", T0 + 31)  # known already: not adopted twice
        history.mark_running(run.name, T0 + 32)
        assert history.finish(run.name, "succeeded", T0 + 90, exit_code=0)
        assert not history.finish(run.name, "failed", T0 + 91)  # an outcome is written once
        job = history.job(run.name)
        assert job is not None and (job.state, job.duration, job.run) == ("succeeded", 58.0, run)
        assert history.job_counts() == {"wine": {"succeeded": 1}}
        assert history.last_triggers() == {"wine": T0 + 30}

        with history.advancing(cursor=7):
            _decide(history, "wine", 100)
        assert history.cursor() == 7
        before = history.decision_counts()
        with history.advancing(cursor=7), pytest.raises(AlreadyDecided):  # e.g. a retried commit that had landed
            _decide(history, "wine", 101)
        assert history.decision_counts() == before  # rolled back whole

        def fence(_db: Any) -> None:
            raise LeaseLost("not the holder")

        history.fence = fence
        with history.advancing(cursor=8), pytest.raises(LeaseLost):
            _decide(history, "wine", 102)
        assert history.cursor() == 7 and history.decision_counts() == before
    finally:
        history.close()


def test_an_mlflow_link_written_by_one_replica_is_shown_by_another(postgres_dsn: str) -> None:
    from retrain.history import MlflowLink
    from retrain.pghistory import PgHistory
    from retrain.policy import Trigger
    from retrain.run import Run

    trigger = Trigger("window", T0, T0 + 600, 1.0, ("x",), None, "drift held")
    run = Run(name="wine-retrain-link000001", model="wine", fingerprint="link000001ab", trigger=trigger, reference="w.csv")
    writer, reader = PgHistory(postgres_dsn, replica="a"), PgHistory(postgres_dsn, replica="b")
    try:
        writer.adopt(run, "kubernetes", "ml", T0)
        writer.link(run.name, MlflowLink("r1", (), T0 + 60))  # the MLflow run, before its version is registered
        writer.link(run.name, MlflowLink("r1", (("wine", "7"),), T0 + 120))
        job = reader.job(run.name)
        assert job is not None and job.mlflow == MlflowLink("r1", (("wine", "7"),), T0 + 120)
    finally:
        writer.close()
        reader.close()


def test_serve_runs_a_fleet_retrainer_in_fleet_mode(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.app.serve import ServeError, _retrain_controller

    config = fleet_config()
    monkeypatch.delenv("DRIFTWATCH_POSTGRES_DSN", raising=False)
    with pytest.raises(ServeError, match="DRIFTWATCH_POSTGRES_DSN"):
        _retrain_controller(config)
    monkeypatch.setenv("DRIFTWATCH_POSTGRES_DSN", postgres_dsn)
    controller = _retrain_controller(config)
    try:
        assert isinstance(controller, FleetRetrainer)
        wait_for(lambda: controller.holder, timeout=5, what="the lease")  # alone: it takes the lease
    finally:
        controller.stop()
    assert not controller.holder


def test_retraining_starts_after_the_evaluations_stored_before_it_first_ran(
        make_replica, store: PgStore, api: FakeKubeAPI, creates: Creates) -> None:
    """As the embedded controller hears only windows evaluated after its start, a fleet's first holder
    does not replay the history already in PostgreSQL (a drift from last month launches nothing)."""
    for i in range(3):
        add(store, "wine", i)
    a = make_replica("replica-a")
    wait_for(lambda: a.holder, timeout=5, what="the lease")
    add(store, "wine", 3)  # one window of a new streak
    wait_for(lambda: len(window_decisions(a.history)) == 1, what="the new window decided")
    time.sleep(0.3)
    assert [d.reason for d in window_decisions(a.history)] == ["streak_building"]
    assert creates.codes == []
