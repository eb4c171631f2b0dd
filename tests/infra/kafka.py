"""A Kafka cluster for tests: librdkafka's mock cluster, held by a child process (kafka_holder.py).

No Kafka broker can be installed here, so fleet-mode tests talk to librdkafka's mock brokers: three
brokers on real TCP ports of 127.0.0.1 that any client process can reach while the holder lives.
The holder reaches the mock's controls (src/rdkafka_mock.h) through ctypes into the librdkafka
bundled in the confluent-kafka wheel; the Python client does not expose them.

What the mock does (read from librdkafka 2.x src/rdkafka_mock*.c, and checked by
tests/infra/test_kafka_cluster.py):

- Produce (idempotent too: it checks PID/epoch/sequence and acks duplicates without appending),
  fetch, consumer groups with rebalancing and offset commits, metadata, topic auto-creation.
  The CreateTopics admin request is not supported: use `create_topic` (rd_kafka_mock_topic_create).
- Replication is metadata only. Each partition has ONE log in the holder's memory; the replica
  list (consecutive broker ids from (partition * replication) % 3) is only reported to clients.
  A produce is appended by the leader and acked at once: `acks` is read and ignored, so acks=all
  behaves like acks=1 and nothing waits for followers.
- `min.insync.replicas` does not exist in the mock: there is no topic or broker config, no ISR
  tracking and no NOT_ENOUGH_REPLICAS unless injected. To test a client's handling of it, inject
  the error: `push_request_errors(0, [19])` (ApiKey 0 = Produce, 19 = NOT_ENOUGH_REPLICAS) fails
  the next Produce request (it is retriable, so librdkafka retries it).
- `rd_kafka_mock_broker_set_down` closes the broker's connections and refuses new ones; it does
  NOT elect new leaders, and a group whose coordinator (crc32(group) % 3, unless pinned) is that
  broker stalls. So `broker_down(id)` here also does the controller's part: it moves the leader of
  every partition of the topics made by `create_topic` to a replica that is up, and re-pins the
  coordinator of groups pinned with `set_group_coordinator`. `broker_down(id, move_leaders=False)`
  is the raw mock behaviour (partitions led by `id` are unavailable until `broker_up`).
  No data is lost by a broker going down (the one log is not on any broker), unlike real Kafka.
- Leaders of `create_topic` topics are pinned round-robin over each partition's replicas (the
  mock would pick them at random), so `leaders(topic)` is known and the same on every run.
- Killing the holder takes every broker down at once, and all data with it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

HOLDER = Path(__file__).with_name("kafka_holder.py")


class KafkaError(RuntimeError):
    """The holder answered `err ...` or died."""


class KafkaCluster:
    """librdkafka's mock cluster of `brokers` brokers (ids 1..brokers) in a holder process."""

    def __init__(self, brokers: int = 3, python: str = sys.executable) -> None:
        self.brokers = brokers
        self.python = python
        self.bootstrap_servers = ""
        self._proc: subprocess.Popen[str] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    def start(self, timeout: float = 15.0) -> KafkaCluster:
        if self._proc is not None:
            raise KafkaError("already started")
        self._log = tempfile.NamedTemporaryFile(prefix="kafka-holder-", suffix=".log", delete=False)
        self._proc = subprocess.Popen(
            [self.python, str(HOLDER), str(self.brokers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1,
        )
        line = self._readline(timeout)
        if not line.startswith("bootstrap "):
            self.stop()
            raise KafkaError(f"holder did not start: {line!r}")
        self.bootstrap_servers = line.split(None, 1)[1]
        return self

    def _readline(self, timeout: float) -> str:
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise KafkaError("not started")
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise KafkaError(f"holder gave no answer (exit code {proc.poll()}); log: {self.log_text()[-2000:]}")
        return line.rstrip("\n")

    def log_text(self) -> str:
        """The holder's stderr (librdkafka's own log lines)."""
        return Path(self._log.name).read_text(errors="replace") if self._log else ""

    def command(self, *words: object, timeout: float = 10.0) -> str:
        """Send one command line; the text after `ok`, or KafkaError for `err ...`."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise KafkaError("holder is not running")
        proc.stdin.write(" ".join(str(w) for w in words) + "\n")
        proc.stdin.flush()
        answer = self._readline(timeout)
        if answer == "ok" or answer.startswith("ok "):
            return answer[3:]
        raise KafkaError(answer)

    def create_topic(self, name: str, partitions: int, replication_factor: int = 3) -> list[int]:
        """Create a topic; its partitions' leaders (broker ids), pinned round-robin over the replicas."""
        return [int(x) for x in self.command("create_topic", name, partitions, replication_factor).split()]

    def leaders(self, topic: str) -> list[int]:
        """The leader this cluster set for each partition of `topic` (create_topic's topics)."""
        return [int(x) for x in self.command("leaders", topic).split()]

    def set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        self.command("set_leader", topic, partition, broker_id)

    def set_group_coordinator(self, group: str, broker_id: int) -> None:
        """Pin a consumer group's coordinator; broker_down moves pinned coordinators off the broker."""
        self.command("set_coordinator", group, broker_id)

    def broker_down(self, broker_id: int, move_leaders: bool = True) -> int:
        """Take a broker down; with move_leaders, re-elect leaders/coordinators elsewhere. How many moved."""
        answer = self.command("broker_down", broker_id, *([] if move_leaders else ["keep_leaders"]))
        return int(answer.split()[1])

    def broker_up(self, broker_id: int) -> None:
        """Let the broker accept connections again (leaders are not moved back)."""
        self.command("broker_up", broker_id)

    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        """The next len(errors) requests of `api_key` (any broker) fail with these Kafka error codes."""
        self.command("push_errors", api_key, *errors)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._log is not None:
            self._log.close()
            os.unlink(self._log.name)
            self._log = None

    def __enter__(self) -> KafkaCluster:
        return self.start() if self._proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __del__(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

