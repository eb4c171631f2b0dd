"""Shared fixtures for fleet mode: a Kafka cluster (librdkafka's mock) and a PostgreSQL server.

Both are session-scoped and started only when a test asks for them; `postgres_dsn` gives each test
its own fresh database on the session's server. See tests/infra/kafka.py and postgres.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.infra.kafka import KafkaCluster
from tests.infra.mlflow_server import MlflowServer
from tests.infra.postgres import PostgresServer


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    with KafkaCluster(brokers=3) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A DSN of a new, empty database (t_<random>), dropped after the test."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.dsn_for(name)
    if postgres_server.running:
        with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    """A real `mlflow server` (its own venv, SQLite, served artifacts); tests/infra/mlflow_server.py."""
    with MlflowServer() as server:
        yield server
