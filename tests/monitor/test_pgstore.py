"""Fleet mode's shared state on a real PostgreSQL server (tests/infra/postgres.py)."""

from __future__ import annotations

import time

import pytest

from monitor.core.pgstore import Checkpoint, PgStore, PgUnavailable
from monitor.core.store import EvaluationRow
from tests.infra.postgres import PostgresServer


def evaluation(point: int, model: str = "m", kind: str = "count") -> EvaluationRow:
    return EvaluationRow(model, 1.0, 2.0, 10, 20, point - 99, point, 100, {"dataset": {"drift_share": 0.5}}, 3.0, (kind, point))


def test_a_grid_point_is_stored_once_whoever_evaluates_it(postgres_dsn: str) -> None:
    a, b = PgStore(postgres_dsn, replica="a"), PgStore(postgres_dsn, replica="b")
    assert a.add_evaluation(evaluation(100), [Checkpoint("m", 0, 5, 0)], "t")
    assert not b.add_evaluation(evaluation(100), [Checkpoint("m", 0, 99, 99)], "t")


def test_a_refused_evaluation_leaves_the_checkpoint_of_the_stored_one(postgres_dsn: str) -> None:
    a, b = PgStore(postgres_dsn, replica="a"), PgStore(postgres_dsn, replica="b")
    a.add_evaluation(evaluation(100), [Checkpoint("m", 0, 5, 0)], "t")
    b.add_evaluation(evaluation(100), [Checkpoint("m", 0, 99, 99)], "t")
    assert a.replay_from("t", 0) == (None, {"m": Checkpoint("m", 0, 5, 0)})


def test_evaluations_come_back_as_stored_newest_first(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    for p in (100, 200):
        store.add_evaluation(evaluation(p), [], "t")
    assert store.evaluations("m") == [evaluation(200), evaluation(100)]


def test_each_models_newest_evaluation_in_one_read(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    for model, p in (("m", 100), ("m", 200), ("other", 50)):
        store.add_evaluation(evaluation(p, model=model), [], "t")
    latest = store.latest_evaluations(["m", "other", "never"])
    assert {m: e.point for m, e in latest.items()} == {"m": ("count", 200), "other": ("count", 50)}


def test_each_grids_newest_point_and_the_newest_ordinal(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    store.add_evaluation(evaluation(300), [], "t")
    store.add_evaluation(evaluation(120, kind="time"), [], "t")
    store.add_evaluation(evaluation(900, model="other"), [], "t")
    assert store.evaluated_points("m") == ({"count": 300.0, "time": 120.0}, 300)


def test_old_evaluations_go_but_each_grids_newest_stays(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    for p in (100, 200, 300):
        store.add_evaluation(evaluation(p), [], "t")
    store.add_evaluation(evaluation(60, kind="time"), [], "t")
    store.add_evaluation(evaluation(100, model="other"), [], "t")
    store.trim_evaluations(["m"], older_than=10.0)
    assert [e.point for e in store.evaluations("m")] + [e.point for e in store.evaluations("other")] == [
        ("time", 60), ("count", 300), ("count", 100)]


def test_partition_and_model_checkpoints_are_read_back_together(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    store.put_checkpoints("t", {2: 40}, [Checkpoint("m", 2, 41, 7), Checkpoint("n", 2, 40, 3)], 1.0)
    store.put_checkpoints("t", {2: 45}, [Checkpoint("m", 2, 50, 9)], 2.0)
    assert store.replay_from("t", 2) == (45, {"m": Checkpoint("m", 2, 50, 9), "n": Checkpoint("n", 2, 40, 3)})


def test_one_lease_holder_at_a_time_until_its_connection_ends(postgres_dsn: str) -> None:
    a, b = PgStore(postgres_dsn), PgStore(postgres_dsn)
    held = (a.try_lease(7), b.try_lease(7))
    a.close()  # the server releases the lock when its backend ends, a moment after the socket closes
    deadline = time.monotonic() + 5
    while not b.try_lease(7) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (held, b.try_lease(7)) == ((True, False), True)


def test_a_database_restart_is_survived_by_reconnecting(postgres_server: PostgresServer, postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    store.add_evaluation(evaluation(100), [], "t")
    postgres_server.restart("immediate")
    assert [e.point for e in store.evaluations("m")] == [("count", 100)]


def test_a_database_that_is_down_is_a_clear_error(postgres_server: PostgresServer, postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn, connect_timeout=2)
    store.ping()
    postgres_server.stop("fast")
    try:
        with pytest.raises(PgUnavailable):
            store.evaluations("m")
    finally:
        postgres_server.start()
