"""Holds a librdkafka mock cluster for as long as it lives; run by `tests.infra.kafka.KafkaCluster`.

Usage: python kafka_holder.py [BROKERS]. Prints `bootstrap HOST:PORT,...` once the brokers listen,
then answers one line per command read on stdin, `ok ...` or `err ...`:

    create_topic NAME PARTITIONS REPLICATION   rd_kafka_mock_topic_create, then pins each leader
    set_leader TOPIC PARTITION BROKER          rd_kafka_mock_partition_set_leader
    set_coordinator GROUP BROKER               rd_kafka_mock_coordinator_set("group", ...)
    broker_down ID [keep_leaders]              rd_kafka_mock_broker_set_down, then moves leaders/coordinators
    broker_up ID                               rd_kafka_mock_broker_set_up
    push_errors APIKEY ERR [ERR ...]           rd_kafka_mock_push_request_errors_array
    leaders TOPIC                              the leaders this holder set, one id per partition
    quit

It exits on `quit` or when stdin closes (its parent died). Signatures follow librdkafka's
src/rdkafka_mock.h; the library is the one bundled in the confluent-kafka wheel.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import sys

RD_KAFKA_PRODUCER = 0


def load_librdkafka() -> ctypes.CDLL:
    spec = importlib.util.find_spec("confluent_kafka")
    candidates: list[str] = []
    if spec and spec.submodule_search_locations:
        pkg = next(iter(spec.submodule_search_locations))
        site = os.path.dirname(pkg)
        candidates += sorted(glob.glob(os.path.join(site, "confluent_kafka.libs", "librdkafka*.so*")))
        candidates += sorted(glob.glob(os.path.join(pkg, ".libs", "librdkafka*.so*")))
    candidates += ["librdkafka.so.1"]
    errors = []
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        if hasattr(lib, "rd_kafka_handle_mock_cluster"):
            return lib
        errors.append(f"{path}: no mock cluster API")
    raise OSError("no librdkafka with the mock API: " + "; ".join(errors))


def declare(lib: ctypes.CDLL) -> None:
    p, c, i32, i16, err = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int16, ctypes.c_int
    sigs = {
        "rd_kafka_conf_new": (p, []),
        "rd_kafka_conf_set": (ctypes.c_int, [p, c, c, c, ctypes.c_size_t]),
        "rd_kafka_new": (p, [ctypes.c_int, p, c, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [p]),
        "rd_kafka_handle_mock_cluster": (p, [p]),
        "rd_kafka_mock_cluster_bootstraps": (c, [p]),
        "rd_kafka_mock_topic_create": (err, [p, c, ctypes.c_int, ctypes.c_int]),
        "rd_kafka_mock_partition_set_leader": (err, [p, c, i32, i32]),
        "rd_kafka_mock_coordinator_set": (err, [p, c, c, i32]),
        "rd_kafka_mock_broker_set_down": (err, [p, i32]),
        "rd_kafka_mock_broker_set_up": (err, [p, i32]),
        "rd_kafka_mock_push_request_errors_array": (None, [p, i16, ctypes.c_size_t, ctypes.POINTER(err)]),
        "rd_kafka_err2name": (c, [err]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


class Holder:
    def __init__(self, lib: ctypes.CDLL, brokers: int) -> None:
        self.lib = lib
        self.brokers = brokers
        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        for key, value in (("test.mock.num.brokers", str(brokers)), ("log_level", "3")):
            if lib.rd_kafka_conf_set(conf, key.encode(), value.encode(), errstr, len(errstr)) != 0:
                raise RuntimeError(f"{key}: {errstr.value.decode()}")
        # rd_kafka_new takes ownership of conf on success.
        self.rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
        if not self.rk:
            raise RuntimeError(errstr.value.decode())
        self.mc = lib.rd_kafka_handle_mock_cluster(self.rk)
        if not self.mc:
            raise RuntimeError("rd_kafka_handle_mock_cluster returned NULL")
        self.bootstraps = lib.rd_kafka_mock_cluster_bootstraps(self.mc).decode()
        self.down: set[int] = set()
        self.replicas: dict[str, list[list[int]]] = {}  # topic -> partition -> replica ids
        self.leaders: dict[str, list[int]] = {}
        self.coordinators: dict[str, int] = {}

    def check(self, code: int) -> None:
        if code != 0:
            raise RuntimeError(self.lib.rd_kafka_err2name(code).decode())

    def replica_ids(self, partition: int, replication: int) -> list[int]:
        """The mock's own assignment (rd_kafka_mock_partition_assign_replicas): consecutive broker ids
        starting at (partition * replication) % brokers, ids 1..brokers."""
        count = min(replication, self.brokers)
        first = (partition * replication) % self.brokers
        return [(first + k) % self.brokers + 1 for k in range(count)]

    def set_leader(self, topic: str, partition: int, broker: int) -> None:
        self.check(self.lib.rd_kafka_mock_partition_set_leader(self.mc, topic.encode(), partition, broker))
        self.leaders.setdefault(topic, [])
        row = self.leaders[topic]
        row.extend([-1] * (partition + 1 - len(row)))
        row[partition] = broker

    def create_topic(self, name: str, partitions: int, replication: int) -> str:
        self.check(self.lib.rd_kafka_mock_topic_create(self.mc, name.encode(), partitions, replication))
        # The mock picks each leader at random among the replicas; pin them round-robin over the
        # replicas so that which broker leads what is known (and the same in every run).
        self.replicas[name] = [self.replica_ids(p, replication) for p in range(partitions)]
        self.leaders[name] = []
        for p, reps in enumerate(self.replicas[name]):
            self.set_leader(name, p, reps[p % len(reps)])
        return " ".join(map(str, self.leaders[name]))

    def set_coordinator(self, group: str, broker: int) -> None:
        self.check(self.lib.rd_kafka_mock_coordinator_set(self.mc, b"group", group.encode(), broker))
        self.coordinators[group] = broker

    def broker_down(self, broker: int, move: bool) -> str:
        self.check(self.lib.rd_kafka_mock_broker_set_down(self.mc, broker))
        self.down.add(broker)
        moved = 0
        if move:
            # What a Kafka controller would do, which the mock does not: elect an in-sync replica
            # that is up (the mock keeps one log per partition, so every replica is "in sync").
            for topic, rows in self.replicas.items():
                for p, reps in enumerate(rows):
                    if self.leaders[topic][p] == broker:
                        alive = [r for r in reps if r not in self.down]
                        if alive:
                            self.set_leader(topic, p, alive[0])
                            moved += 1
            up = [b for b in range(1, self.brokers + 1) if b not in self.down]
            for group, coord in list(self.coordinators.items()):
                if coord == broker and up:
                    self.set_coordinator(group, up[0])
        return f"moved {moved}"

    def broker_up(self, broker: int) -> None:
        self.check(self.lib.rd_kafka_mock_broker_set_up(self.mc, broker))
        self.down.discard(broker)

    def push_errors(self, api_key: int, errors: list[int]) -> None:
        arr = (ctypes.c_int * len(errors))(*errors)
        self.lib.rd_kafka_mock_push_request_errors_array(self.mc, api_key, len(errors), arr)

    def handle(self, words: list[str]) -> str:
        cmd, args = words[0], words[1:]
        if cmd == "create_topic":
            return self.create_topic(args[0], int(args[1]), int(args[2]))
        if cmd == "set_leader":
            self.set_leader(args[0], int(args[1]), int(args[2]))
            return ""
        if cmd == "set_coordinator":
            self.set_coordinator(args[0], int(args[1]))
            return ""
        if cmd == "broker_down":
            return self.broker_down(int(args[0]), move=args[1:] != ["keep_leaders"])
        if cmd == "broker_up":
            self.broker_up(int(args[0]))
            return ""
        if cmd == "push_errors":
            self.push_errors(int(args[0]), [int(a) for a in args[1:]])
            return ""
        if cmd == "leaders":
            return " ".join(map(str, self.leaders.get(args[0], [])))
        raise ValueError(f"unknown command {cmd!r}")


def main() -> int:
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    lib = load_librdkafka()
    declare(lib)
    holder = Holder(lib, brokers)
    print(f"bootstrap {holder.bootstraps}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            print("ok", flush=True)
            break
        try:
            out = holder.handle(words)
        except Exception as exc:  # answered, never fatal: the cluster stays up for the caller
            print(f"err {type(exc).__name__}: {exc}", flush=True)
        else:
            print(f"ok {out}".rstrip(), flush=True)
    lib.rd_kafka_destroy(holder.rk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
