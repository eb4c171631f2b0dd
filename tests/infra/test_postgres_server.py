"""PostgresServer works with a real client: psycopg 3 over TCP, advisory locks across connections,
a crash (`pg_ctl -m immediate stop`) and restart that keeps committed data, and per-test databases."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from tests.infra.postgres import PostgresServer


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of its own, for tests that stop it."""
    with PostgresServer() as server:
        yield server


def test_psycopg_connects_over_tcp_to_the_session_server(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.dsn) as conn:
        row = conn.execute("SELECT current_user, inet_server_port()").fetchone()
    assert row == ("postgres", postgres_server.port)


def test_the_socket_path_stays_short(postgres_server: PostgresServer) -> None:
    socket = postgres_server.socket_dir / f".s.PGSQL.{postgres_server.port}"
    assert len(os.fsencode(socket)) < 100


def test_an_advisory_lock_held_by_one_connection_is_refused_to_another(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as a, psycopg.connect(postgres_dsn, autocommit=True) as b:
        assert a.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)
        assert b.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (False,)
        assert a.execute("SELECT pg_advisory_unlock(42)").fetchone() == (True,)
        assert b.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)


def test_each_test_gets_a_fresh_empty_database(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert name is not None and name[0].startswith("t_")
    assert tables == (0,)


def test_committed_rows_survive_an_immediate_stop_and_the_client_reconnects(own_server: PostgresServer) -> None:
    with psycopg.connect(own_server.dsn) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY)")
        conn.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
        conn.commit()
        conn.execute("INSERT INTO kept VALUES (5000)")  # left uncommitted when the server dies
        own_server.restart("immediate")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(own_server.dsn) as conn:
        assert conn.execute("SELECT count(*), max(id) FROM kept").fetchone() == (1000, 1000)


def test_a_fast_stop_refuses_connections_until_start(own_server: PostgresServer) -> None:
    own_server.stop("fast")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(own_server.dsn, connect_timeout=2)
    own_server.start()
    with psycopg.connect(own_server.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_cleanup_removes_the_directories() -> None:
    server = PostgresServer().start()
    server.cleanup()
    assert (server.root.exists(), server.socket_dir.exists()) == (False, False)
