"""Pure parts of the sidecar: capture records, header framing, settings, retry policy, the spool."""

from __future__ import annotations

import base64
import errno
import json
import os
import random
import resource
from pathlib import Path

import msgspec
import pytest

from monitor.capture.wire import MAX_VERSION_FIELD, CapturedEvent, decode_batch
from monitor.sidecar.capture import BodyBuffer, EventEncoder, RawCapture, choose_id, encode_body
from monitor.sidecar.framing import filter_headers, request_head, response_head
from monitor.sidecar.metrics import AUTH_STATUSES, DROP_REASONS, UPSTREAM_ERROR_KINDS, SidecarMetrics
from monitor.sidecar.settings import SettingsError, build_settings
from monitor.sidecar.shipper import Outcome, backoff_delay, classify_status
from monitor.sidecar.spool import Spool, SpoolError
from monitor.sidecar.token import TokenSource

# -- capture ---------------------------------------------------------------------------------------


def test_choose_id_prefers_ce_id_then_request_id_and_rejects_unsafe_ids() -> None:
    assert choose_id(b"ce-1", b"req-1") == "ce-1"
    assert choose_id(None, b" req-1 ") == "req-1"
    assert choose_id(b"has space", b"req.2:x") == "req.2:x"
    assert choose_id(b"a/b", b"x" * 129) is None
    assert choose_id(None, None) is None


def test_generated_ids_are_unique_across_encoders_and_valid_on_the_wire() -> None:
    """The monitor is idempotent by id: two sidecars (or restarts) must never generate the same one."""
    first, second = EventEncoder("wine", frozenset()), EventEncoder("wine", frozenset())
    ids = [first.new_id() for _ in range(1000)] + [second.new_id() for _ in range(1000)]
    assert len(set(ids)) == 2000
    for event_id in ids[::97]:
        CapturedEvent.model_validate({"id": event_id, "model": "wine", "timestamp": 1.0, "request": {"body": "{}"}})


def test_body_buffer_keeps_the_first_bytes_and_flags_truncation() -> None:
    buf = BodyBuffer(5)
    buf.add(b"abc")
    assert not buf.truncated
    buf.add(b"defg")
    buf.add(b"h")
    assert buf.value() == b"abcde" and buf.truncated
    exact = BodyBuffer(3)
    exact.add(b"abc")
    exact.add(b"")
    assert exact.value() == b"abc" and not exact.truncated


def test_encode_body_utf8_base64_and_cut_multibyte_character() -> None:
    assert encode_body("héllo".encode(), False) == ("héllo", "utf-8")
    binary = bytes(range(256))
    assert encode_body(binary, False) == (base64.b64encode(binary).decode(), "base64")
    cut = "ab€".encode()[:-1]  # the euro sign is 3 bytes; keep 2 of them
    assert encode_body(cut, True) == ("ab", "utf-8")
    assert encode_body(cut, False)[1] == "base64"  # not truncated: really not UTF-8


def _raw(headers: list[tuple[bytes, bytes]], request: bytes, response: bytes, limit: int = 1 << 16) -> RawCapture:
    req, resp = BodyBuffer(limit), BodyBuffer(limit)
    req.add(request)
    resp.add(response)
    return RawCapture(1763812345.1234567, 0.0021, 200, b"POST", b"/v1/models/wine:predict?x=1", headers, None,
                      req.value(), req.truncated, resp.value(), resp.truncated)


def test_encoded_event_matches_the_wire_format() -> None:
    encoder = EventEncoder("wine", frozenset({"x-request-id", "traceparent"}))
    headers = [(b"Content-Type", b"application/json"), (b"X-Request-ID", b"r1"), (b"Authorization", b"secret")]
    raw = _raw(headers, b'{"instances":[[1]]}', b"\xff\x00\x01", limit=2)
    event = json.loads(encoder.encode(raw))
    assert event == {
        "id": "r1", "model": "wine", "timestamp": 1763812345.123457, "latency_seconds": 0.0021,
        "status": 200, "method": "POST", "path": "/v1/models/wine:predict",
        "request": {"body": '{"', "encoding": "utf-8", "truncated": True, "content_type": "application/json"},
        "response": {"body": "/wA=", "encoding": "base64", "truncated": True, "content_type": None},
        "headers": {"x-request-id": "r1"},
    }
    CapturedEvent.model_validate(event)  # what the monitor accepts


def test_encoded_event_without_a_usable_caller_id_gets_a_generated_one_once() -> None:
    """An event's id is fixed when it is encoded: retries and spool replays resend the same bytes."""
    encoder = EventEncoder("wine", frozenset({"ce-id"}), id_prefix="p")
    a = json.loads(encoder.encode(_raw([(b"ce-id", b"not valid/")], b"{}", b"{}")))
    b = json.loads(encoder.encode(_raw([], "é".encode(), b"{}")))
    assert (a["id"], b["id"]) == ("p-0", "p-1")
    assert a["headers"] == {"ce-id": "not valid/"} and b["request"]["body"] == "é"


@pytest.mark.parametrize("status", [0, 99, 100, 599, 600, 999])
def test_hostile_fields_are_clipped_to_what_the_monitor_accepts(status: int) -> None:
    """The monitor refuses a whole batch (422) for one field over its limits: no capture may produce one."""
    names = [f"x-h{i}" for i in range(100)]
    encoder = EventEncoder("wine", frozenset([*names, "x-request-id"]), id_prefix="p")
    headers = [(b"Content-Type", b"application/json; x=" + b"\xe9" * 5000), (b"X-Request-ID", b"a" * 129 + b"\n")]
    headers += [(name.encode(), b"\x00\xff" * 1000) for name in names] + [(b"x-h0", b"again")]
    raw = RawCapture(1.5, 0.001, status, b"SOME-VERY-LONG-EXTENSION-METHOD", b"/v1/models/" + b"\xff" * 70000 + b":predict?q=1",
                     headers, b"text/plain; " + b"y" * 1000, b"{}", False, b"{}", False)
    encoded = encoder.encode(raw)
    (event,) = decode_batch(b'{"events":[' + encoded + b"]}").events  # what the monitor's ingest runs
    assert event.id == "p-0" and len(event.path) == 2048 and event.path.startswith("/v1/models/\xff")
    assert event.request.content_type == "application/json; x=" + "\xe9" * 236 and len(event.response.content_type or "") == 256
    assert len(event.headers) == 64 and event.headers["x-h0"] == "again" and event.method == "SOME-VERY-LONG-E"
    assert event.status == (status if 100 <= status <= 599 else 502)


def test_hot_path_histogram_renders_prometheus_le_buckets_count_and_sum() -> None:
    """Plain-int buckets collected at scrape time must read exactly like a prometheus_client Histogram."""
    m = SidecarMetrics("wine")
    for seconds in (0.00005, 0.00005001, 0.0003, 75.0):  # on a bound, just above it, mid, beyond the last
        m.upstream_seconds.observe(seconds)
    m.captured += 2
    text = m.render().decode()
    def sample(le: str) -> str:
        return f'driftwatch_sidecar_request_duration_seconds_bucket{{le="{le}",phase="upstream"}}'
    assert f"{sample('5e-05')} 1.0" in text and f"{sample('0.0001')} 2.0" in text
    assert f"{sample('0.0005')} 3.0" in text and f"{sample('60.0')} 3.0" in text and f"{sample('+Inf')} 4.0" in text
    assert 'driftwatch_sidecar_request_duration_seconds_count{phase="upstream"} 4.0' in text
    assert 'driftwatch_sidecar_request_duration_seconds_count{phase="overhead"} 0.0' in text
    assert 'driftwatch_sidecar_events_captured_total{model="wine"} 2.0' in text
    total = float(next(line.split()[-1] for line in text.splitlines() if line.startswith('driftwatch_sidecar_request_duration_seconds_sum{phase="upstream"}')))
    assert total == pytest.approx(75.00035001)


def test_every_exported_family_and_label_value_is_documented() -> None:
    """docs/metrics.md is where on-call engineers look up a sidecar series: it must not fall behind."""
    doc = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    section = doc.split("## Capture sidecar", 1)[1]
    names = {line.split("{")[0].split()[0] for line in SidecarMetrics("wine").render().decode().splitlines()
             if line and not line.startswith("#")}
    families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
                for n in names if not n.endswith("_created")}
    assert families and all(f"`{f}`" in section for f in families), families
    assert all(f"`{reason}`" in section for reason in DROP_REASONS + UPSTREAM_ERROR_KINDS + AUTH_STATUSES)


# -- framing ---------------------------------------------------------------------------------------


def test_hop_by_hop_and_connection_listed_headers_are_removed_others_kept_verbatim() -> None:
    headers = [
        (b"Host", b"m"), (b"X-Custom", b"A"), (b"Connection", b"keep-alive, X-Secret-Hop"), (b"Keep-Alive", b"timeout=5"),
        (b"X-Secret-Hop", b"1"), (b"TE", b"trailers"), (b"Upgrade", b"h2c"), (b"x-custom", b"B"), (b"Proxy-Connection", b"x"),
    ]
    assert filter_headers(headers) == [b"Host: m\r\n", b"X-Custom: A\r\n", b"x-custom: B\r\n"]


def test_connection_options_never_remove_framing_or_routing_fields() -> None:
    """`Connection: Content-Length` dropping the length of a body still forwarded is request smuggling."""
    headers = [
        (b"Host", b"m"), (b"Connection", b"Content-Length, HOST , transfer-encoding, X-Hop"), (b"Content-Length", b"3"),
        (b"X-Hop", b"1"), (b"Transfer-Encoding", b"chunked"),
    ]
    assert filter_headers(headers) == [b"Host: m\r\n", b"Content-Length: 3\r\n"]
    response = response_head(200, b"OK", [(b"Connection", b"content-length"), (b"Content-Length", b"2")], chunked=False, close=False)
    assert response == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"


def test_request_head_adds_host_for_http10_and_reframes_chunked() -> None:
    head = request_head(b"POST", b"/p?q=1", [(b"Transfer-Encoding", b"chunked")], chunked=True, default_host=b"127.0.0.1:9")
    assert head == b"POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nTransfer-Encoding: chunked\r\n\r\n"
    head = request_head(b"GET", b"/", [(b"host", b"m"), (b"Content-Length", b"0")], chunked=False, default_host=None)
    assert head == b"GET / HTTP/1.1\r\nhost: m\r\nContent-Length: 0\r\n\r\n"
    head = response_head(201, b"Created", [(b"Content-Length", b"0")], chunked=False, close=True)
    assert head == b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"upstream": "https://m:1"}, "--upstream"),
        ({"upstream": "http://m:1/v1"}, "--upstream"),
        ({"monitor": "monitor:8080"}, "--monitor"),
        ({"model": "Wine_Model"}, "--model"),
        ({"sample_ratio": 1.5}, "--sample-ratio"),
        ({"capture_paths": ["("]}, "--capture-path"),
        ({"max_capture_bytes": "lots"}, "--max-capture-bytes"),
        ({"token_env": "DW_TOKEN_UNSET"}, "--token-env"),
        ({"token_env": "T", "token_file": Path("/run/secret/token"), "environ": {"T": "x"}}, "--token-file"),
        ({"header_allow": ["bad header"]}, "--header-allow"),
        ({"upstream_timeout": "0s"}, "--upstream-timeout"),
        ({"queue_max": 0}, "--queue-max"),
    ],
)
def test_bad_flags_are_reported_by_name(overrides: dict, flag: str) -> None:
    args = {"upstream": "http://127.0.0.1:9000", "monitor": "http://monitor:8080", "model": "wine", "environ": {}, **overrides}
    with pytest.raises(SettingsError, match=flag):
        build_settings(**args)


# -- token file ------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_file_is_read_at_start_and_again_only_when_it_changed_at_most_once_a_second(tmp_path: Path) -> None:
    path, clock = tmp_path / "token", _Clock()
    path.write_text("first\n")
    source = TokenSource(path=path, clock=clock)
    assert source.token == "first"
    path.write_text("second-token\n")
    clock.now += 0.5
    assert source.refresh() is False  # checked less than a second ago
    assert source.token == "first"
    clock.now += 0.6
    assert source.refresh() is True
    assert source.token == "second-token"
    clock.now += 1.1
    assert source.refresh() is False  # unchanged file: stat only


def test_token_file_is_read_again_at_once_when_forced_after_a_401(tmp_path: Path) -> None:
    path, clock = tmp_path / "token", _Clock()
    path.write_text("first")
    source = TokenSource(path=path, clock=clock)
    path.write_text("rotated")
    assert source.refresh(force=True) is True
    assert source.token == "rotated"


@pytest.mark.parametrize("content", ["", "two\nlines", "sp ace", "caf\u00e9"])
def test_an_empty_or_malformed_token_file_keeps_the_last_token(tmp_path: Path, content: str) -> None:
    path = tmp_path / "token"
    path.write_text("good")
    source = TokenSource(path=path, clock=_Clock())
    path.write_text(content)
    assert source.refresh(force=True) is False
    assert source.token == "good"


def test_a_missing_token_file_keeps_the_last_token_and_is_read_once_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "token"
    source = TokenSource(path=path, clock=_Clock())
    assert source.token is None
    path.write_text("late")
    assert source.refresh(force=True) is True
    assert source.token == "late"


def test_a_fixed_token_never_changes() -> None:
    source = TokenSource("fixed")
    assert source.refresh(force=True) is False
    assert source.token == "fixed"


def test_settings_defaults_and_units() -> None:
    s = build_settings(upstream="http://127.0.0.1:9000", monitor="http://m:8080/", model="wine", token_env="T",
                       max_capture_bytes="1KiB", linger="250ms", header_allow=["X-Request-ID"], environ={"T": "secret"})
    assert (s.upstream.host, s.upstream.port, s.monitor_url) == ("127.0.0.1", 9000, "http://m:8080")
    assert (s.token, s.max_capture_bytes, s.linger) == ("secret", 1024, 0.25)
    assert s.header_allow == frozenset({"x-request-id"})
    assert any(p.search("/v1/models/wine:predict") for p in s.capture_paths)
    assert any(p.search("/v2/models/wine/versions/3/infer") for p in s.capture_paths)
    assert not any(p.search("/v1/models/wine") for p in s.capture_paths)  # the readiness probe path


# -- retry policy ----------------------------------------------------------------------------------


def test_status_classification() -> None:
    assert classify_status(200) is Outcome.OK
    assert [classify_status(s) for s in (408, 429, 500, 503)] == [Outcome.RETRY] * 4
    assert classify_status(413) is Outcome.TOO_LARGE
    assert [classify_status(s) for s in (400, 404, 422, 301)] == [Outcome.REJECTED] * 4
    assert [classify_status(s) for s in (401, 403)] == [Outcome.AUTH] * 2  # kept and retried, never dropped


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    rng = random.Random(1)
    for attempt, ceiling in ((0, 0.1), (1, 0.2), (3, 0.8), (10, 5.0), (200, 5.0)):
        delays = [backoff_delay(attempt, 5.0, rng.uniform) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # the whole range is used (full jitter)


# -- spool -----------------------------------------------------------------------------------------


def _drain(spool: Spool, batch: int = 3) -> list[bytes]:
    out = []
    for _ in range(1000):  # bounded: a spool whose `pending` never reaches 0 fails here instead of hanging
        if not spool.pending:
            return out
        read = spool.read_batch(batch, 1 << 20)
        assert read.corrupt == read.missing == 0
        out.extend(read.records)
        spool.commit(read.position)
    raise AssertionError(f"spool still has {spool.pending} pending records")


def test_spool_replays_in_order_across_segments_and_frees_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    records = [f"event-{i:03d}".encode() * 3 for i in range(20)]
    for r in records:
        assert spool.append(r)
    assert spool.pending == 20 and len(list(tmp_path.glob("*.seg"))) > 3
    assert _drain(spool) == records
    assert spool.pending == 0 and spool.disk_bytes == 0
    assert not list(tmp_path.glob("*.seg"))


def test_spool_survives_restart_resumes_at_cursor_and_skips_torn_tail(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 16)
    for i in range(10):
        spool.append(b"r%d" % i)
    spool.commit(spool.read_batch(4, 1 << 20).position)
    spool.close()
    segment = sorted(tmp_path.glob("*.seg"))[-1]
    with open(segment, "ab") as f:  # a crash in the middle of a frame
        f.write(b"\x00\x00\x00\x10\x12\x34")
    reopened = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 16)
    assert reopened.recovered_corrupt == 1
    assert reopened.pending == 6
    assert _drain(reopened) == [b"r%d" % i for i in range(4, 10)]


def test_spool_flipped_bit_is_detected_by_crc(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(b"payload-%d" % i)
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[-2] ^= 0xFF  # corrupt the last record's payload
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.recovered_corrupt == 1
    assert _drain(reopened) == [b"payload-0", b"payload-1"]


def test_spool_is_bounded_and_prepend_puts_older_records_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100, segment_bytes=64)
    accepted = [spool.append(b"x" * 20) for _ in range(10)]
    assert accepted.count(True) == 3 and spool.disk_bytes <= 100  # 3 frames of 28 bytes
    big = Spool(tmp_path / "b", max_bytes=1 << 20)
    big.append(b"newer-1")
    big.append(b"newer-2")
    assert big.prepend([b"older-1", b"older-2"]) == 2
    big.close()
    assert _drain(Spool(tmp_path / "b", max_bytes=1 << 20)) == [b"older-1", b"older-2", b"newer-1", b"newer-2"]


def test_a_spool_directory_has_one_owner_at_a_time(tmp_path: Path) -> None:
    """Two sidecars sharing a spool would delete each other's segments: the second is refused."""
    owner = Spool(tmp_path, max_bytes=1 << 20)
    owner.append(b"kept")
    with pytest.raises(SpoolError, match="in use by another sidecar"):
        Spool(tmp_path, max_bytes=1 << 20)
    owner.close()
    assert _drain(Spool(tmp_path, max_bytes=1 << 20)) == [b"kept"]


def test_a_spool_directory_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a directory")
    with pytest.raises(SpoolError, match="cannot create spool directory"):
        Spool(tmp_path / "taken", max_bytes=1 << 20)


def test_disabled_spool_takes_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "off", max_bytes=0)
    assert not spool.append(b"x")
    assert not (tmp_path / "off").exists()
    assert os.listdir(tmp_path) == []


def _segment_frames(path: Path) -> list[int]:
    """Offsets of the frames of a segment ([u32 length][u32 crc32][payload])."""
    data, offsets, off = path.read_bytes(), [], 0
    while off + 8 <= len(data):
        offsets.append(off)
        off += 8 + int.from_bytes(data[off : off + 4], "big")
    return offsets


def test_spool_frame_corrupted_at_runtime_is_skipped_counted_once_and_pending_corrected(tmp_path: Path) -> None:
    """A bad CRC met on replay loses the rest of its segment: exactly those records are reported, and
    `pending` reaches 0 (it used to stay above 0 with nothing left to read: the shipper spun)."""
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 16)
    for i in range(10):
        spool.append(b"rec-%d" % i)
    segment = next(tmp_path.glob("*.seg"))
    bad = _segment_frames(segment)[6]
    with open(segment, "r+b") as f:
        f.seek(bad + 9)
        f.write(b"X")
    reads = []
    for _ in range(10):
        if not spool.pending:
            break
        read = spool.read_batch(4, 1 << 20)
        reads.append((read.records, read.corrupt, read.missing))
        spool.commit(read.position)
    # Records or a loss per read, never both: committing part of a read cannot count a loss twice.
    assert reads == [([b"rec-0", b"rec-1", b"rec-2", b"rec-3"], 0, 0), ([b"rec-4", b"rec-5"], 0, 0), ([], 4, 0)]
    assert spool.pending == 0 and spool.disk_bytes == 0
    spool.append(b"later")
    assert _drain(spool) == [b"later"]


def test_spool_frame_corrupted_in_the_active_segment_keeps_later_appends(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 16)
    for i in range(3):
        spool.append(b"rec-%d" % i)
    segment = next(tmp_path.glob("*.seg"))
    with open(segment, "r+b") as f:
        f.seek(_segment_frames(segment)[1] + 9)
        f.write(b"X")
    read = spool.read_batch(10, 1 << 20)
    assert read.records == [b"rec-0"]
    spool.commit(read.position)
    read = spool.read_batch(10, 1 << 20)
    assert (read.records, read.corrupt) == ([], 2)
    spool.commit(read.position)
    spool.append(b"rec-3")  # appended after the skip, to the same segment
    assert spool.pending == 1 and _drain(spool) == [b"rec-3"]


def test_spool_segment_missing_at_runtime_is_counted_and_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=24)  # two 12-byte records per segment
    records = [b"r%03d" % i for i in range(6)]
    for r in records:
        spool.append(r)
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) == 3
    segments[1].unlink()
    read = spool.read_batch(10, 1 << 20)
    assert read.records == records[:2]
    spool.commit(read.position)
    read = spool.read_batch(10, 1 << 20)
    assert (read.records, read.corrupt, read.missing) == ([], 0, 2)
    spool.commit(read.position)
    assert spool.pending == 2 and _drain(spool) == records[4:]


def test_spool_read_failing_with_emfile_consumes_nothing_and_succeeds_later(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        spool.append(b"r%d" % i)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
        with pytest.raises(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))  # exhaust the table: the next open fails
        with pytest.raises(SpoolError) as err:
            spool.read_batch(10, 1 << 20)
        assert err.value.errno == errno.EMFILE
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert spool.pending == 3 and _drain(spool) == [b"r0", b"r1", b"r2"]


def test_spool_cursor_that_cannot_be_written_loses_nothing(tmp_path: Path) -> None:
    """ENOSPC on the cursor (a real one, from /dev/full): commit carries on and removes the stale
    cursor, so a restart replays the remaining segments from their start instead of skipping any."""
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=24)
    records = [b"r%03d" % i for i in range(6)]
    for r in records:
        spool.append(r)
    spool.commit(spool.read_batch(1, 1 << 20).position)  # a good cursor first
    assert (tmp_path / "cursor").exists()
    (tmp_path / "cursor.tmp").symlink_to("/dev/full")
    read = spool.read_batch(2, 1 << 20)
    spool.commit(read.position)  # r001, r002 shipped
    assert spool.pending == 3 and not (tmp_path / "cursor").exists()
    spool.close()
    replayed = _drain(Spool(tmp_path, max_bytes=1 << 20, segment_bytes=24))
    assert replayed[-3:] == records[3:] and set(replayed) <= set(records[2:])  # may repeat r002, never skips


def test_spool_read_can_be_committed_record_by_record(tmp_path: Path) -> None:
    """A split batch commits the part already settled; the rest is read again from there."""
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=24)
    records = [b"r%03d" % i for i in range(5)]
    for r in records:
        spool.append(r)
    read = spool.read_batch(5, 1 << 20)
    assert read.records == records and read.ends[-1] == read.position
    spool.commit(read.ends[2])  # across a segment boundary
    assert spool.pending == 2 and len(list(tmp_path.glob("*.seg"))) == 2
    assert _drain(spool) == records[3:]


def test_events_carry_the_pods_namespace() -> None:
    encoder = EventEncoder("wine", frozenset(), id_prefix="p", namespace="team-a")
    assert json.loads(encoder.encode(_raw([], b"{}", b"{}")))["namespace"] == "team-a"


def test_the_namespace_defaults_to_the_pods() -> None:
    settings = build_settings(upstream="http://127.0.0.1:8080", monitor="http://m:8080", model="wine",
                              environ={"POD_NAMESPACE": "team-a"})
    assert settings.namespace == "team-a"


def test_a_namespace_that_is_not_one_is_refused() -> None:
    with pytest.raises(SettingsError, match="--namespace"):
        build_settings(upstream="http://127.0.0.1:8080", monitor="http://m:8080", model="wine", namespace="Team A")


def test_a_servers_overlong_version_header_is_clipped_to_what_the_envelope_takes() -> None:
    """The monitor then rejects that one event (`invalid_version`), never the batch (docs/versions.md)."""
    raw = msgspec.structs.replace(_raw([], b"{}", b"{}"), version=b"v" * 300)
    event = json.loads(EventEncoder("wine", frozenset(), id_prefix="p", version="fixed").encode(raw))
    assert len(event["version"]) == MAX_VERSION_FIELD
    CapturedEvent.model_validate(event)


def test_the_fixed_version_stamps_a_call_whose_response_names_none() -> None:
    event = json.loads(EventEncoder("wine", frozenset(), id_prefix="p", version="2.0").encode(_raw([], b"{}", b"{}")))
    assert event["version"] == "2.0"
