"""The controller end to end: evaluations → decisions → Jobs / processes → outcomes → snapshot, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_api import BlackHole, FakeKubeAPI, running_api
from kubernetes import client

from monitor.core.config import Config, parse_config
from retrain.controller import RetrainController
from retrain.history import History
from retrain.kubernetes import KubernetesLauncher, Retry
from retrain.local import LocalLauncher
from retrain.manifest import build_job
from retrain.policy import WindowEvaluation
from retrain.run import Run

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = {"apiVersion": "batch/v1", "kind": "Job",
            "spec": {"template": {"spec": {"containers": [{"name": "train", "image": "ghcr.io/x/train:1"}]}}}}


def config_data(tmp_path: Path, **wine_retrain: Any) -> dict[str, Any]:
    feature = [{"name": "x", "type": "numeric", "critical": True}, {"name": "y", "type": "numeric"}]
    wine = {"launcher": "kubernetes", "consecutive_windows": 2, "min_records": 100, "cooldown": "1h",
            "max_active": 1, "kubernetes": {"namespace": "ml", "template": TEMPLATE}, **wine_retrain}
    churn = {"launcher": "local", "consecutive_windows": 1, "cooldown": 0,
             "local": {"command": [sys.executable, "-c", "import os; print('trained', os.environ['DRIFTWATCH_MODEL'])"],
                       "log_dir": str(tmp_path / "logs"), "timeout": "1m"}}
    return {
        "defaults": {"max_active_jobs_total": 4},
        "models": [
            {"name": "wine", "features": feature, "reference": {"path": "wine.csv"}, "retrain": wine},
            {"name": "churn", "features": feature, "reference": {"path": "churn.csv"}, "retrain": churn},
            {"name": "plain", "features": feature, "reference": {"path": "plain.csv"}},
        ],
    }


def make_config(tmp_path: Path, **wine_retrain: Any) -> Config:
    return parse_config(config_data(tmp_path, **wine_retrain))


def window(i: int, share: float = 0.8, n: int = 500) -> WindowEvaluation:
    return WindowEvaluation(window_start=1795348800.0 + 300 * i, window_end=1795348800.0 + 300 * i + 300,
                            n_records=n, drift_share=share, dataset_drifted=share >= 0.5,
                            drifted_features=("y",), critical_drifted=("x",) if share >= 0.5 else (),
                            report_url="http://127.0.0.1:8080/reports/wine")


class Clock:
    def __init__(self, t: float = 1795352400.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def api() -> Iterator[FakeKubeAPI]:
    with running_api() as server:
        yield server


def kube(api: FakeKubeAPI, **kw: Any) -> KubernetesLauncher:
    return KubernetesLauncher(api.api_client(), retry=Retry(attempts=3, base=0.02, cap=0.1, timeout=(1.0, 2.0)),
                              watch_timeout=5, poll_interval=0.2, **kw)


@pytest.fixture
def make_controller(tmp_path: Path, api: FakeKubeAPI) -> Iterator[Callable[..., RetrainController]]:
    made: list[RetrainController] = []

    def make(config: Config | None = None, db: Path | None = None, clock: Callable[[], float] | None = None,
             start: bool = True) -> RetrainController:
        c = RetrainController(config or make_config(tmp_path), db or tmp_path / "driftwatch.db",
                              clock=clock or Clock(), kubernetes=kube(api), local=LocalLauncher(poll_interval=0.05))
        if start:
            c.start()
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def test_a_drift_streak_launches_one_job_and_its_outcome_is_counted(api: FakeKubeAPI, make_controller) -> None:
    clock = Clock()
    c = make_controller(clock=clock)
    d1 = c.on_evaluation("wine", window(0))
    d2 = c.on_evaluation("wine", window(1))
    assert (d1.action, d2.action) == ("none", "launch")
    wait_for(lambda: len(api.jobs("ml")) == 1)
    (job,) = api.jobs("ml")
    assert job["metadata"]["labels"]["driftwatch.io/trigger"] == d2.fingerprint
    wait_for(lambda: c.history.jobs(model="wine")[0].state == "running")
    assert c.snapshot()["wine"].active == 1
    api.complete("ml", job["metadata"]["name"])
    wait_for(lambda: c.snapshot()["wine"].finished["succeeded"] == 1)
    snap = c.snapshot()["wine"]
    assert snap.active == 0
    assert snap.last_trigger == clock.t
    assert snap.launched == 1
    assert dict(snap.finished) == {"succeeded": 1, "failed": 0, "deadline_exceeded": 0}
    assert dict(snap.decisions) == {"streak_building": 1, "drift_streak": 1}
    # The drift persists: inside the cooldown the next trigger is skipped, and reported as such.
    clock.t += 60
    c.on_evaluation("wine", window(2))
    assert c.on_evaluation("wine", window(3)).reason == "cooldown"
    assert c.snapshot()["wine"].decisions["cooldown"] == 1
    assert c.snapshot()["wine"].launched == 1
    recent = c.history.recent_decisions("wine", 10, triggered_only=True)
    assert [(r.action, r.reason) for r in recent] == [("skip", "cooldown"), ("launch", "drift_streak")]
    assert len(api.jobs("ml")) == 1


def test_failed_and_deadline_exceeded_jobs_free_their_slot(api: FakeKubeAPI, make_controller, tmp_path: Path) -> None:
    clock = Clock()
    c = make_controller(make_config(tmp_path, consecutive_windows=1, cooldown=0), clock=clock)
    c.on_evaluation("wine", window(0))
    wait_for(lambda: len(api.jobs("ml")) == 1)
    assert c.on_evaluation("wine", window(1)).reason == "max_active"
    api.fail("ml", api.jobs("ml")[0]["metadata"]["name"], "DeadlineExceeded")
    wait_for(lambda: c.snapshot()["wine"].finished["deadline_exceeded"] == 1)
    clock.t += 1
    assert c.on_evaluation("wine", window(2)).action == "launch"
    wait_for(lambda: len(api.jobs("ml")) == 2)
    second = next(j for j in api.jobs("ml") if not j["status"].get("conditions"))
    api.fail("ml", second["metadata"]["name"], "BackoffLimitExceeded")
    wait_for(lambda: c.snapshot()["wine"].finished["failed"] == 1)
    assert c.snapshot()["wine"].active == 0


def test_the_local_launcher_records_exit_status_duration_and_log(make_controller, tmp_path: Path) -> None:
    c = make_controller()
    d = c.on_evaluation("churn", window(0))
    assert d.action == "launch"
    wait_for(lambda: c.snapshot()["churn"].finished["succeeded"] == 1)
    (rec,) = c.history.jobs(model="churn")
    assert rec.exit_code == 0
    assert rec.duration is not None
    assert rec.duration >= 0
    assert rec.log_path
    assert Path(rec.log_path).read_text().strip() == "trained churn"


def test_the_cluster_wide_cap_blocks_other_models(api: FakeKubeAPI, make_controller, tmp_path: Path) -> None:
    data = config_data(tmp_path, consecutive_windows=1)
    data["defaults"]["max_active_jobs_total"] = 1
    c = make_controller(parse_config(data))
    assert c.on_evaluation("wine", window(0)).action == "launch"
    assert c.on_evaluation("churn", window(0)).reason == "max_active_total"


def test_dry_run_records_and_counts_but_launches_nothing(api: FakeKubeAPI, make_controller, tmp_path: Path) -> None:
    c = make_controller(make_config(tmp_path, dry_run=True))
    c.on_evaluation("wine", window(0))
    d = c.on_evaluation("wine", window(1))
    assert (d.action, d.reason) == ("skip", "dry_run")
    snap = c.snapshot()["wine"]
    assert snap.launched == 0
    assert snap.decisions["dry_run"] == 1
    assert snap.last_trigger is not None
    assert not any(m == "POST" for m, _ in api.requests)


def test_a_refused_launch_is_a_failed_outcome(api: FakeKubeAPI, make_controller) -> None:
    api.inject("POST", status=403)
    c = make_controller()
    c.on_evaluation("wine", window(0))
    c.on_evaluation("wine", window(1))
    wait_for(lambda: c.snapshot()["wine"].finished["failed"] == 1)
    (rec,) = c.history.jobs(model="wine")
    assert rec.detail
    assert rec.detail.startswith("launch failed")
    assert "403" in rec.detail
    assert c.snapshot()["wine"].active == 0


def test_unknown_and_unconfigured_models_are_answered_not_recorded(make_controller) -> None:
    c = make_controller()
    assert c.on_evaluation("nope", window(0)).reason == "unknown_model"
    assert c.on_evaluation("plain", window(0)).reason == "disabled"
    assert set(c.snapshot()) == {"wine", "churn"}
    assert c.history.recent_decisions("plain", 5) == []


def test_evaluation_does_not_wait_for_the_api(api: FakeKubeAPI, make_controller) -> None:
    api.inject("POST", status=None, delay=2.0)
    c = make_controller()
    c.on_evaluation("wine", window(0))
    assert c.on_evaluation("wine", window(1)).action == "launch"
    assert api.jobs("ml") == []  # decided and persisted; the create is still in flight
    assert c.snapshot()["wine"].active == 1
    wait_for(lambda: len(api.jobs("ml")) == 1)


def test_start_adopts_running_jobs_and_closes_vanished_ones(api: FakeKubeAPI, make_controller, tmp_path: Path) -> None:
    db = tmp_path / "driftwatch.db"
    first = make_controller(db=db)
    first.on_evaluation("wine", window(0))
    first.on_evaluation("wine", window(1))
    wait_for(lambda: len(api.jobs("ml")) == 1 and first.history.jobs()[0].state == "running")
    (launched,) = first.history.jobs()
    first.stop()
    api.delete("ml", api.jobs("ml")[0]["metadata"]["name"])  # deleted while the monitor is down
    # ... and another replica started one of its own.
    other = Run("wine-retrain-feedfeedfe", "wine", "feedfeedfeedfeed", launched.run.trigger, "x")
    cfg = make_config(tmp_path)
    rc = cfg.retrain_for(cfg.model("wine"))
    assert rc is not None
    assert rc.kubernetes is not None
    assert api.create("ml", build_job(other, rc.kubernetes))[0] == 201
    second = make_controller(db=db)

    def states() -> dict[str, str]:
        return {r.name: r.state for r in second.history.jobs(model="wine")}

    wait_for(lambda: states() == {launched.name: "failed", other.name: "running"})
    assert second.snapshot()["wine"].active == 1
    assert second.history.job(launched.name).detail.startswith("Job not found at start-up")  # type: ignore[union-attr]


# -- a monitor restart in the middle of a trigger -----------------------------------------------------

CHILD = textwrap.dedent("""
    import json, sys, time
    from monitor.core.config import parse_config
    from retrain.controller import RetrainController
    from retrain.kubernetes import KubernetesLauncher, Retry
    from retrain.policy import WindowEvaluation
    from kubernetes import client

    url, db, data, windows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    cfg = client.Configuration(host=url)
    kube = KubernetesLauncher(client.ApiClient(cfg), retry=Retry(attempts=100, base=0.05, cap=0.1, timeout=(1, 30)))
    c = RetrainController(parse_config(data), db, kubernetes=kube)
    c.start()
    for w in windows:
        print(c.on_evaluation("wine", WindowEvaluation(**w)).action, flush=True)
    time.sleep(120)
""")


def run_child(api: FakeKubeAPI, db: Path, data: dict[str, Any], windows: list[WindowEvaluation]) -> subprocess.Popen[str]:
    payload = json.dumps([{**w.__dict__, "drifted_features": list(w.drifted_features),
                           "critical_drifted": list(w.critical_drifted)} for w in windows])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, api.url, str(db), json.dumps(data), payload],
                            stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("landed", [False, True], ids=["create-lost", "create-landed"])
def test_a_restart_in_the_middle_of_a_trigger_produces_exactly_one_job(
        api: FakeKubeAPI, make_controller, tmp_path: Path, landed: bool) -> None:
    db = tmp_path / "driftwatch.db"
    data = config_data(tmp_path)
    # The API answers the create only after a long pause: the monitor is killed while it waits.
    # Either the request never took effect (a 500 after the pause) or it did (the answer was lost).
    api.inject("POST", status=None if landed else 500, delay=3.0, after=landed)
    child = run_child(api, db, data, [window(0), window(1)])
    try:
        assert child.stdout is not None
        assert [child.stdout.readline().strip() for _ in range(2)] == ["none", "launch"]
        wait_for(lambda: any(m == "POST" for m, _ in api.requests))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        if child.stdout:
            child.stdout.close()
    wait_for(lambda: len(api.jobs("ml")) == (1 if landed else 0), timeout=10)
    restarted = make_controller(parse_config(data), db=db)
    # The windows the monitor replays after a restart change nothing.
    assert restarted.on_evaluation("wine", window(1)).reason == "stale_window"
    wait_for(lambda: len(api.jobs("ml")) == 1)
    wait_for(lambda: restarted.history.jobs(model="wine")[0].state == "running")
    posts_after = sum(1 for m, _ in api.requests if m == "POST")
    assert posts_after == (1 if landed else 2)
    api.complete("ml", api.jobs("ml")[0]["metadata"]["name"])
    wait_for(lambda: restarted.snapshot()["wine"].finished["succeeded"] == 1)
    assert restarted.snapshot()["wine"].launched == 1
    assert len(api.jobs("ml")) == 1


def test_two_replicas_deciding_the_same_trigger_create_one_job(api: FakeKubeAPI, make_controller,
                                                               tmp_path: Path) -> None:
    a = make_controller(db=tmp_path / "a.db")
    b = make_controller(db=tmp_path / "b.db")
    for c in (a, b):
        c.on_evaluation("wine", window(0))
    assert [c.on_evaluation("wine", window(1)).action for c in (a, b)] == ["launch", "launch"]
    # One replica created the Job; the other's create answered 409 and it follows the same Job.
    def settled() -> bool:
        recs = [c.history.jobs(model="wine")[0] for c in (a, b)]
        return all(r.state == "running" for r in recs) and sorted(str(r.detail) for r in recs) == [
            "None", "already existed"]

    wait_for(settled)
    assert len(api.jobs("ml")) == 1
    assert sum(1 for m, _ in api.requests if m == "POST") == 2


def test_history_schema_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from monitor.core.schema import SchemaVersionError

    db = tmp_path / "driftwatch.db"
    History(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(SchemaVersionError, match="99"):
        History(db)


# -- start-up never waits for the Kubernetes API; reconciliation follows it -----------------------------


def test_start_returns_while_the_api_never_answers(tmp_path: Path) -> None:
    with BlackHole() as hole:
        cfg = client.Configuration(host=hole.url)
        cfg.retries = False
        kube = KubernetesLauncher(client.ApiClient(cfg), retry=Retry(attempts=3, base=0.02, cap=0.1, timeout=(1.0, 5.0)))
        c = RetrainController(make_config(tmp_path, consecutive_windows=1), tmp_path / "driftwatch.db",
                              clock=Clock(), kubernetes=kube, local=LocalLauncher(poll_interval=0.05))
        try:
            started = time.monotonic()
            c.start()
            assert time.monotonic() - started < 1.0  # one API call alone would take 5 s here
            wait_for(lambda: hole.accepted >= 1)  # reconciliation is under way, in the background
            # Decisions are made meanwhile: a local run proceeds, a Kubernetes launch waits for its namespace.
            assert c.on_evaluation("churn", window(0)).action == "launch"
            wait_for(lambda: c.snapshot()["churn"].finished["succeeded"] == 1)
            assert c.on_evaluation("wine", window(0)).action == "launch"
            assert [r.state for r in c.history.jobs(model="wine")] == ["pending"]
        finally:
            stopping = time.monotonic()
            c.stop()
            assert time.monotonic() - stopping < 4.0


def test_reconciliation_happens_once_the_api_answers(api: FakeKubeAPI, make_controller, tmp_path: Path) -> None:
    db = tmp_path / "driftwatch.db"
    first = make_controller(make_config(tmp_path, consecutive_windows=1, max_active=2, cooldown=0), db=db)
    first.on_evaluation("wine", window(0))
    wait_for(lambda: len(api.jobs("ml")) == 1 and first.history.jobs()[0].state == "running")
    (vanished,) = first.history.jobs()
    first.stop()
    api.delete("ml", vanished.name)  # deleted while the monitor was down
    # The API is slow: the first two lists time out (read timeout 2 s), the third answers.
    api.inject("GET", r"/namespaces/ml/jobs$", status=None, delay=2.5, times=2)
    second = make_controller(make_config(tmp_path, consecutive_windows=1, max_active=2, cooldown=0), db=db)
    assert second.history.job(vanished.name).state == "running"  # type: ignore[union-attr]  # not reconciled yet
    held = second.on_evaluation("wine", window(1))
    assert held.action == "launch"  # decided, held until the namespace is reconciled
    assert api.jobs("ml") == []
    wait_for(lambda: second.history.job(vanished.name).state == "failed")  # type: ignore[union-attr]
    wait_for(lambda: [j["metadata"]["labels"]["driftwatch.io/trigger"] for j in api.jobs("ml")] == [held.fingerprint])
    wait_for(lambda: second.snapshot()["wine"].active == 1)
    assert sum(1 for m, _ in api.requests if m == "POST") == 2  # the first run's and the held one's, once each


def test_a_job_deleted_while_the_watch_reconnects_is_closed(api: FakeKubeAPI, tmp_path: Path) -> None:
    # A watch's read timeout is watch_timeout + 5 s, well past the injected 3 s hang: the fault is always
    # the 500 (a read timeout instead would be retried by urllib3, resending the watch from its rv).
    kube = KubernetesLauncher(api.api_client(), retry=Retry(attempts=3, base=0.02, cap=0.1, timeout=(1.0, 5.0)),
                              watch_timeout=1, poll_interval=0.2)
    c = RetrainController(make_config(tmp_path, consecutive_windows=1, cooldown=0), tmp_path / "driftwatch.db",
                          clock=Clock(), kubernetes=kube)
    try:
        c.start()
        c.on_evaluation("wine", window(0))
        wait_for(lambda: len(api.jobs("ml")) == 1 and c.history.jobs()[0].state == "running")
        (rec,) = c.history.jobs()
        # The next watch request hangs, then fails; `kubectl delete job` lands in that gap: the delete
        # waits until a watch has taken the fault, so no healthy watch can see it as a DELETED event.
        api.inject("GET", "/jobs$", status=500, delay=3.0, watch_only=True)
        wait_for(lambda: api.faults_left() == 0)
        api.delete("ml", rec.name)
        wait_for(lambda: c.history.job(rec.name).state == "failed")  # type: ignore[union-attr]
        assert c.history.job(rec.name).detail.startswith("Job not found on relist")  # type: ignore[union-attr]
        assert c.snapshot()["wine"].active == 0
        assert c.on_evaluation("wine", window(1)).action == "launch"  # max_active no longer blocks the model
    finally:
        c.stop()


@pytest.mark.parametrize("change", ["disabled", "removed", "switched_to_local"])
def test_jobs_of_a_model_no_longer_launching_on_kubernetes_are_still_followed(
        api: FakeKubeAPI, make_controller, tmp_path: Path, change: str) -> None:
    db = tmp_path / "driftwatch.db"
    data = config_data(tmp_path, consecutive_windows=1)
    data["defaults"]["max_active_jobs_total"] = 1
    first = make_controller(parse_config(data), db=db)
    first.on_evaluation("wine", window(0))
    wait_for(lambda: len(api.jobs("ml")) == 1 and first.history.jobs()[0].state == "running")
    first.stop()
    wine = data["models"][0]
    if change == "disabled":
        wine["retrain"]["enabled"] = False
    elif change == "removed":
        del wine["retrain"]
    else:
        wine["retrain"] = {**data["models"][1]["retrain"], "consecutive_windows": 1}
    second = make_controller(parse_config(data), db=db)
    (name,) = [j["metadata"]["name"] for j in api.jobs("ml")]
    wait_for(lambda: any(p.endswith("?watch") for _, p in api.requests[-3:]))
    assert second.on_evaluation("churn", window(0)).reason == "max_active_total"  # the Job still runs
    api.complete("ml", name)
    wait_for(lambda: second.history.job(name).state == "succeeded")  # type: ignore[union-attr]
    assert second.on_evaluation("churn", window(1)).action == "launch"  # its slot is free again


def test_a_create_cut_short_by_shutdown_is_made_by_the_next_start(
        api: FakeKubeAPI, make_controller, tmp_path: Path) -> None:
    """A rolling update while the API answers slowly with a 500 must not spend the trigger: the run
    stays pending (not `failed`), and the restarted monitor creates its Job."""
    db = tmp_path / "driftwatch.db"
    data = config_data(tmp_path, consecutive_windows=1)
    first = make_controller(parse_config(data), db=db)
    api.inject("POST", status=500, delay=1.0)
    assert first.on_evaluation("wine", window(0)).action == "launch"
    wait_for(lambda: any(method == "POST" for method, _ in api.requests))
    first.stop()  # SIGTERM while the create waits for its answer
    (rec,) = make_controller(parse_config(data), db=db, start=False).history.jobs()
    assert rec.state == "pending", rec
    second = make_controller(parse_config(data), db=db)
    wait_for(lambda: second.history.job(rec.name).state == "running")  # type: ignore[union-attr]
    assert [j["metadata"]["name"] for j in api.jobs("ml")] == [rec.name]
