"""Fleet mode's shared state on a real PostgreSQL server (tests/infra/postgres.py)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from monitor.core.labelstore import PerformanceRow
from monitor.core.pgstore import Checkpoint, LabelledEvent, PgStore, PgUnavailable, Prediction
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


# -- schema v2: performance beside the evaluation, ground truth ----------------------------------------

V1_EVALUATIONS = """
CREATE TABLE dw_schema (version integer NOT NULL);
INSERT INTO dw_schema VALUES (1);
CREATE TABLE dw_evaluations (
    id bigserial PRIMARY KEY, model text NOT NULL,
    point_kind text NOT NULL CHECK (point_kind IN ('count', 'time')), point double precision NOT NULL,
    window_start double precision NOT NULL, window_end double precision NOT NULL,
    first_seq bigint NOT NULL, last_seq bigint NOT NULL, first_rec bigint NOT NULL, last_rec bigint NOT NULL,
    n_records integer NOT NULL, result jsonb NOT NULL, evaluated_at double precision NOT NULL, replica text NOT NULL,
    partition integer, first_base bigint, UNIQUE (model, point_kind, point));
INSERT INTO dw_evaluations (model, point_kind, point, window_start, window_end, first_seq, last_seq, first_rec, last_rec,
    n_records, result, evaluated_at, replica) VALUES ('m', 'count', 100, 1, 2, 10, 20, 1, 100, 100,
    '{"dataset": {"drift_share": 0.5}}', 3, 'old');
"""


def perf_row(last_rec: int, n_labelled: int = 0, model: str = "m", first_rec: int | None = None) -> PerformanceRow:
    first = last_rec - 99 if first_rec is None else first_rec
    return PerformanceRow(model, first, last_rec, 1.0, 2.0, ("count", last_rec), 100, n_labelled,
                          {"metric": "accuracy", "estimated": {"accuracy": 0.8}}, 3.0, 3.0)


def test_a_version_1_database_is_migrated_and_keeps_its_evaluations(postgres_dsn: str) -> None:
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(V1_EVALUATIONS)
    store = PgStore(postgres_dsn)
    assert [e.point for e in store.evaluations("m")] == [("count", 100)]
    assert store.performance_history("m") == []  # evaluated before performance existed
    store.add_evaluation(evaluation(200), [], "t", performance=perf_row(200))
    assert [r.last_rec for r in store.performance_history("m")] == [200]
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT version FROM dw_schema").fetchall() == [(2,)]
    PgStore(postgres_dsn).evaluations("m")  # a second replica's connect migrates nothing twice


def test_a_newer_schema_is_refused(postgres_dsn: str) -> None:
    import psycopg

    PgStore(postgres_dsn).ping()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE dw_schema SET version = 99")
    store = PgStore(postgres_dsn)
    with pytest.raises(RuntimeError, match="newer"):
        store.evaluations("m")


def test_performance_is_stored_with_its_evaluation_and_only_with_it(postgres_dsn: str) -> None:
    a, b = PgStore(postgres_dsn, replica="a"), PgStore(postgres_dsn, replica="b")
    assert a.add_evaluation(evaluation(100), [], "t", performance=perf_row(100))
    other = replace(perf_row(100), result={"metric": "accuracy", "estimated": {"accuracy": 0.1}})
    assert not b.add_evaluation(evaluation(100), [], "t", performance=other)  # the grid point's loser stores nothing
    assert a.performance_history("m") == [perf_row(100)]


def labelled(event_id: str, first: int, n: int, model: str = "m") -> LabelledEvent:
    items = [{"label": 1, "prediction": "1", "probabilities": [0.9]} for _ in range(n)]
    return LabelledEvent(model, event_id, first, first + n - 1, items, 1.0, None, 5.0)


def test_a_label_batch_is_processed_once_with_its_counts_and_stale_windows(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    store.add_evaluation(evaluation(100), [], "t", performance=perf_row(100))
    store.add_predictions([Prediction("m", "e1", 1.0, 10, 11, None, [{"prediction": "1", "probabilities": [0.9]}] * 2)])
    seen: list[tuple[set[str], set[str]]] = []

    def decide(found: dict[str, Prediction], done: set[str]) -> tuple[list[LabelledEvent], dict[str, int]]:
        seen.append((set(found), done))
        return ([labelled("e1", 10, 2)] if "e1" not in done else []), {"joined": 1, "unknown_id": 1}

    assert store.add_labels("batch-1", "m", ["e1", "nope"], decide, 5.0) == {"joined": 1, "unknown_id": 1}
    assert store.add_labels("batch-1", "m", ["e1", "nope"], decide, 5.0) is None  # a replay: nothing, not counted
    assert store.add_labels("batch-2", "m", ["e1"], decide, 6.0) == {"joined": 1, "unknown_id": 1}
    assert seen == [({"e1"}, set()), ({"e1"}, {"e1"})]
    assert store.label_counts(["m"]) == {"m": {"joined": 2, "unknown_id": 2}}
    assert [r.last_rec for r in store.stale_performance("m")] == [100]
    assert store.labelled_window("m", 11, 100) == labelled("e1", 10, 2).items[1:]
    store.put_performance(replace(perf_row(100), n_labelled=2, updated_at=9.0))
    assert store.stale_performance("m") == []
    store.put_performance(replace(perf_row(100), n_labelled=1, updated_at=9.0))  # a count that misses a label: stale again
    assert [r.n_labelled for r in store.stale_performance("m")] == [1]


def test_old_predictions_labels_and_batch_ids_are_trimmed(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    store.add_predictions([Prediction("m", "old", 1.0, 1, 1, None, [{}]), Prediction("m", "new", 50.0, 2, 2, None, [{}])])
    store.add_labels("b", "m", ["old"], lambda found, done: ([labelled("old", 1, 1)], {"joined": 1}), 5.0)
    assert store.trim_labels({"m": 10.0}, older_than=6.0) == 3  # one prediction, one label, one batch id
    assert store.add_labels("b2", "m", ["old", "new"], lambda found, done: ([], {o: 1 for o in found}), 7.0) == {"new": 1}


def test_a_model_that_gained_a_namespace_keeps_its_evaluations_and_checkpoints(postgres_dsn: str) -> None:
    store = PgStore(postgres_dsn)
    store.add_evaluation(evaluation(100), [Checkpoint("m", 0, 5, 3)], "t")
    assert store.adopt_namespaces({"m": "team-a/m"}) == {"m": 1}
    assert (store.evaluations("team-a/m"), store.replay_from("t", 0)[1]) == (
        [replace(evaluation(100), model="team-a/m")], {"team-a/m": Checkpoint("team-a/m", 0, 5, 3)})


def test_a_second_replica_moving_the_same_model_moves_nothing(postgres_dsn: str) -> None:
    a, b = PgStore(postgres_dsn, replica="a"), PgStore(postgres_dsn, replica="b")
    a.add_evaluation(evaluation(100), [], "t")
    a.adopt_namespaces({"m": "team-a/m"})
    assert (b.adopt_namespaces({"m": "team-a/m"}), len(b.evaluations("team-a/m"))) == ({}, 1)
