"""The controller with each pipeline launcher: decisions → runs → outcomes, exactly once across restarts.

Every test here runs for Argo Workflows, Kubeflow Pipelines, Airflow and the signed webhook (the
`rig` fixture, tests/retrain/pipeline_rigs.py). The restart tests kill a real monitor process with
SIGKILL while its create is in flight, then start a new controller on the same SQLite history.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hook_receiver import HookReceiver
from pipeline_rigs import FAST, SECRET, Rig, posts
from test_retrain_controller import Clock, wait_for, window

from monitor.core.config import ConfigError, parse_config
from retrain.controller import RetrainController
from retrain.policy import WindowEvaluation
from retrain.signed_webhook import WebhookLauncher

ROOT = Path(__file__).resolve().parents[2]
FEATURES = [{"name": "x", "type": "numeric", "critical": True}, {"name": "y", "type": "numeric"}]


def config_data(rig: Rig, **retrain: Any) -> dict[str, Any]:
    section = rig.cfg.model_dump(mode="json", exclude_none=True)
    wine = {"launcher": rig.kind, "consecutive_windows": 2, "min_records": 100, "cooldown": "1h",
            "max_active": 1, rig.kind: section, **retrain}
    return {"models": [{"name": "wine", "features": FEATURES, "reference": {"path": "wine.csv"}, "retrain": wine}]}


@pytest.fixture
def make_controller(tmp_path: Path, rig: Rig) -> Iterator[Callable[..., RetrainController]]:
    made: list[RetrainController] = []

    def make(data: dict[str, Any] | None = None, db: Path | None = None) -> RetrainController:
        c = RetrainController(parse_config(data or config_data(rig)), db or tmp_path / "driftwatch.db",
                              clock=Clock(), pipelines={rig.kind: rig.make(FAST)}, pipeline_poll=0.05)
        c.start()
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def state(c: RetrainController) -> str:
    (rec,) = c.history.jobs(model="wine")
    return rec.state


@pytest.mark.parametrize("ok", [True, False], ids=["succeeded", "failed"])
def test_a_drift_streak_launches_one_run_followed_to_its_outcome(rig: Rig, make_controller, ok: bool) -> None:
    c = make_controller()
    assert [c.on_evaluation("wine", window(i)).action for i in range(2)] == ["none", "launch"]
    wait_for(lambda: len(rig.created()) == 1 and state(c) == "running")
    (rec,) = c.history.jobs(model="wine")
    assert rig.params(rig.created()[0]) == rec.run.env()
    rig.finish(rec.run, ok)
    wait_for(lambda: state(c) != "running")
    assert state(c) == ("succeeded" if ok else "failed")
    assert c.snapshot()["wine"].active == 0


def test_a_second_replica_deciding_the_same_trigger_adds_no_run(rig: Rig, make_controller, tmp_path: Path) -> None:
    a = make_controller(db=tmp_path / "a.db")
    for i in range(2):
        a.on_evaluation("wine", window(i))
    wait_for(lambda: state(a) == "running")
    b = make_controller(db=tmp_path / "b.db")  # its own store: it decides the same trigger again
    for i in range(2):
        b.on_evaluation("wine", window(i))
    wait_for(lambda: state(b) == "running")
    assert b.history.jobs()[0].detail == "already existed"
    assert len(rig.created()) == 1


def test_a_run_deleted_on_the_other_side_is_closed_as_failed(rig: Rig, make_controller) -> None:
    c = make_controller()
    for i in range(2):
        c.on_evaluation("wine", window(i))
    wait_for(lambda: state(c) == "running")
    rig.remove(c.history.jobs()[0].run)
    wait_for(lambda: state(c) == "failed")
    assert "not found" in str(c.history.jobs()[0].detail)


def test_a_refused_launch_is_a_failed_outcome_with_the_reason(rig: Rig, make_controller) -> None:
    rig.server.inject("POST", rig.create_path, status=403, times=10)
    c = make_controller()
    for i in range(2):
        c.on_evaluation("wine", window(i))
    wait_for(lambda: state(c) == "failed")
    assert str(c.history.jobs()[0].detail).startswith("launch failed")


# -- a monitor killed in the middle of a create ------------------------------------------------------------

CHILD = textwrap.dedent("""
    import json, sys, time
    from kubernetes import client
    from monitor.core.config import parse_config
    from retrain.airflow import AirflowLauncher
    from retrain.argo import ArgoLauncher
    from retrain.controller import RetrainController
    from retrain.kubeflow import KubeflowLauncher
    from retrain.launcher import Retry
    from retrain.policy import WindowEvaluation
    from retrain.signed_webhook import WebhookLauncher

    kind, url, db, data, windows = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
    retry = Retry(attempts=100, base=0.05, cap=0.1, timeout=(1, 30))
    launcher = {
        "argo": lambda: ArgoLauncher(client.ApiClient(client.Configuration(host=url)), retry=retry),
        "kubeflow": lambda: KubeflowLauncher(retry=retry),
        "airflow": lambda: AirflowLauncher(retry=retry),
        "webhook": lambda: WebhookLauncher(retry=retry),
    }[kind]()
    c = RetrainController(parse_config(data), db, pipelines={kind: launcher})
    c.start()
    for w in windows:
        print(c.on_evaluation("wine", WindowEvaluation(**w)).action, flush=True)
    time.sleep(120)
""")


def run_child(rig: Rig, db: Path, data: dict[str, Any], windows: list[WindowEvaluation]) -> subprocess.Popen[str]:
    payload = json.dumps([{**w.__dict__, "drifted_features": list(w.drifted_features),
                           "critical_drifted": list(w.critical_drifted)} for w in windows])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, rig.kind, rig.server.url, str(db), json.dumps(data), payload],
                            stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("landed", [False, True], ids=["create-lost", "create-landed"])
def test_a_restart_in_the_middle_of_a_create_launches_exactly_once(
        rig: Rig, make_controller, tmp_path: Path, landed: bool) -> None:
    db = tmp_path / "driftwatch.db"
    data = config_data(rig)
    # The create is answered only after a long pause, and the monitor is killed while it waits:
    # either the request never took effect (a 500 after the pause) or it did (the answer was lost).
    rig.server.inject("POST", rig.create_path, status=None if landed else 500, delay=3.0, after=landed)
    child = run_child(rig, db, data, [window(0), window(1)])
    try:
        assert child.stdout is not None
        assert [child.stdout.readline().strip() for _ in range(2)] == ["none", "launch"]
        wait_for(lambda: posts(rig) >= 1)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        if child.stdout:
            child.stdout.close()
    wait_for(lambda: len(rig.created()) == (1 if landed else 0), timeout=10)
    restarted = make_controller(data, db=db)
    assert restarted.on_evaluation("wine", window(1)).reason == "stale_window"  # replayed windows change nothing
    wait_for(lambda: state(restarted) == "running")
    assert len(rig.created()) == 1
    (rec,) = restarted.history.jobs()
    rig.finish(rec.run, True)
    wait_for(lambda: state(restarted) == "succeeded")
    assert restarted.snapshot()["wine"].launched == 1
    assert len(rig.created()) == 1


def test_a_running_run_is_followed_not_relaunched_after_a_restart(rig: Rig, make_controller, tmp_path: Path) -> None:
    db = tmp_path / "driftwatch.db"
    first = make_controller(db=db)
    for i in range(2):
        first.on_evaluation("wine", window(i))
    wait_for(lambda: state(first) == "running")
    first.stop()
    before = posts(rig)
    second = make_controller(db=db)
    rig.finish(second.history.jobs()[0].run, False)
    wait_for(lambda: state(second) == "failed")
    assert posts(rig) == before


# -- launcher-specific ------------------------------------------------------------------------------------


def test_a_webhook_without_status_url_is_closed_once_delivered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with HookReceiver(SECRET) as hook:
        retrain = {"launcher": "webhook", "consecutive_windows": 1,
                   "webhook": {"url": f"{hook.url}/hooks/retrain", "secret_env": "HOOK_SECRET"}}
        data = {"models": [{"name": "wine", "features": FEATURES, "reference": {"path": "w.csv"}, "retrain": retrain}]}
        c = RetrainController(parse_config(data), tmp_path / "d.db", clock=Clock(),
                              pipelines={"webhook": WebhookLauncher(retry=FAST)}, pipeline_poll=0.05)
        try:
            c.start()
            c.on_evaluation("wine", window(0))
            wait_for(lambda: state(c) == "succeeded")
            assert "completion not followed" in str(c.history.jobs()[0].detail)
            assert len(hook.deliveries) == 1
        finally:
            c.stop()


@pytest.mark.parametrize(("section", "message"), [
    ({"launcher": "argo"}, "launcher is `argo` but no `argo` section is configured"),
    ({"launcher": "kubeflow", "kubeflow": {"host": "ml-pipeline:8888", "pipeline_id": "p", "pipeline_version_id": "v"}},
     "'ml-pipeline:8888' is not an http(s) URL"),
    ({"launcher": "airflow", "airflow": {"host": "http://af", "dag_id": "d", "api_version": "v3"}},
     "Input should be 'v1' or 'v2'"),
    ({"launcher": "airflow", "airflow": {"host": "http://af", "dag_id": "d", "auth": {"token_env": "T", "username": "u"}}},
     "use either a bearer token"),
    ({"launcher": "webhook", "webhook": {"url": "http://h"}}, "set exactly one of `secret_file` and `secret_env`"),
    ({"launcher": "argo", "argo": {"workflow_template": "Train_Wine"}}, "is not a Kubernetes object name"),
])
def test_a_bad_pipeline_section_is_a_precise_config_error(section: dict[str, Any], message: str) -> None:
    data = {"models": [{"name": "wine", "features": FEATURES, "reference": {"path": "w.csv"}, "retrain": section}]}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    ((path, msg),) = err.value.errors
    assert path.startswith("models[0:wine].retrain")
    assert message in msg


def test_credential_files_are_relative_to_the_config_file(tmp_path: Path) -> None:
    import yaml

    from monitor.core.config import load_config

    retrain = {"launcher": "webhook", "webhook": {"url": "http://h/x", "secret_file": "secrets/hook",
                                                  "auth": {"token_file": "secrets/token"}}}
    path = tmp_path / "conf" / "driftwatch.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"models": [{"name": "wine", "features": FEATURES, "reference": {"path": "w.csv"},
                                                "retrain": retrain}]}))
    rc = load_config(path).models[0].retrain
    assert rc is not None
    assert rc.webhook is not None
    assert (rc.webhook.secret_file, rc.webhook.auth.token_file) == (path.parent / "secrets/hook", path.parent / "secrets/token")


def test_defaults_are_unchanged() -> None:
    data = {"models": [{"name": "wine", "features": FEATURES, "reference": {"path": "w.csv"},
                        "retrain": {"local": {"command": ["true"]}}}]}
    rc = parse_config(data).models[0].retrain
    assert rc is not None
    assert (rc.launcher, rc.pipeline()) == ("local", None)
