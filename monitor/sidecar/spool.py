"""A bounded, append-only on-disk spool of serialized events, replayed in order.

Layout: `<dir>/<seq>.seg` segment files of frames `[u32 length][u32 crc32][payload]` (big-endian),
and `<dir>/cursor` ("<seq> <offset>": where replay resumes). Writes go straight to the file with
`os.write` (no user-space buffer), so a killed process loses nothing it appended; `sync()` fsyncs
(the shipper calls it every `fsync_interval` from a worker thread), so a power loss loses at most
that interval. A frame torn by a crash fails its length/CRC check: the rest of that segment is
skipped (counted as one `corrupt` drop) and the file is truncated to its last whole frame.

Every segment's record count is kept, and `pending` is recomputed from the read position on each
commit, so records lost at runtime (a frame that fails its CRC, a segment that vanished) are
counted exactly and can never leave `pending` above what is left to read. A read returns records
or reports such a loss, never both: committing part of a read then never counts a loss twice.

One process owns a spool directory at a time (an exclusive `flock` on `<dir>/lock`): a second
sidecar pointed at it, e.g. two of the same model on one host with the default directory, would
truncate and delete the first one's segments.

The cursor is a hint written without fsync: replay may repeat up to one segment after a crash,
which the monitor's idempotency by event id absorbs. When it cannot be written (a full disk), the
stale one is removed, so a restart replays the remaining segments from their start rather than
skipping any. Not thread-safe except `sync()`.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

__all__ = ["Position", "Spool", "SpoolError", "SpoolRead", "error_name"]

log = logging.getLogger("driftwatch.sidecar.spool")
_HEADER = struct.Struct(">II")
_FIRST_SEQ = 10**12  # leaves room below for segments prepended at shutdown (older events)
MAX_RECORD = 64 * 1024**2
_FULL = (errno.ENOSPC, errno.EDQUOT)


class SpoolError(OSError):
    """The spool could not be written (other than being full) or read; nothing was consumed."""


Position = tuple[int, int, int]
"""Where replay resumes: (segment seq, byte offset, index of the frame at that offset)."""


class SpoolRead(NamedTuple):
    records: list[bytes]
    ends: list[Position]
    """The position after each record: committing `ends[k - 1]` consumes the first k records."""
    position: Position
    """After everything read or skipped."""
    corrupt: int
    """Records lost to a frame that failed its length/CRC check (the rest of its segment)."""
    missing: int
    """Records lost with a segment file that is gone."""


def _name(seq: int) -> str:
    return f"{seq:020d}.seg"


class Spool:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = 8 * 1024**2) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._sizes: dict[int, int] = {}  # seq -> bytes of whole frames, ascending by seq
        self._counts: dict[int, int] = {}  # seq -> whole frames in it
        self._active: int | None = None
        self._active_fd: int | None = None
        self._retired: list[int] = []  # fds of full segments, fsynced and closed by sync()
        self._fd_lock = threading.Lock()
        self._dir_lock_fd: int | None = None
        self._read_seq = 0
        self._read_off = 0
        self._read_idx = 0
        self._cursor_failed = False
        self.pending = 0
        self.disk_bytes = 0
        self.recovered_corrupt = 0
        if max_bytes > 0:
            self._recover()

    # -- startup ---------------------------------------------------------------------------------

    def _recover(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(exc.errno, f"cannot create spool directory {self.directory}: {exc.strerror}") from None
        self._dir_lock_fd = _lock_directory(self.directory)
        cursor_seq, cursor_off = self._read_cursor()
        cursor_ok = False
        cursor_idx = 0
        for path in sorted(self.directory.glob("*.seg")):
            try:
                seq = int(path.stem)
            except ValueError:
                continue
            if seq < cursor_seq:
                path.unlink(missing_ok=True)
                continue
            data = path.read_bytes()
            offsets = list(_scan(data))
            end = offsets[-1][1] if offsets else 0
            if end < len(data):
                self.recovered_corrupt += 1
                log.warning("spool_torn_tail segment=%s kept_bytes=%d skipped_bytes=%d", path.name, end, len(data) - end)
                os.truncate(path, end)
            if end == 0:
                path.unlink(missing_ok=True)
                continue
            self._sizes[seq] = end
            self._counts[seq] = len(offsets)
            self.disk_bytes += end
            if seq == cursor_seq and cursor_off in {0, *(e for _, e in offsets)}:
                cursor_ok = True
                cursor_idx = sum(1 for start, _ in offsets if start < cursor_off)
        if self._sizes:
            first = min(self._sizes)
            if first == cursor_seq and cursor_ok:
                self._read_seq, self._read_off, self._read_idx = first, cursor_off, cursor_idx
            else:
                self._read_seq, self._read_off, self._read_idx = first, 0, 0
        self.pending = self._left_after(self._read_seq, self._read_idx)
        if self.pending == 0:
            self._clear()

    def _read_cursor(self) -> tuple[int, int]:
        try:
            seq, off = (self.directory / "cursor").read_text().split()
            return int(seq), int(off)
        except (OSError, ValueError):
            return 0, 0

    def _write_cursor(self) -> None:
        """Best effort (the cursor is a hint); on failure the stale cursor goes, so nothing is skipped."""
        tmp = self.directory / "cursor.tmp"
        try:
            tmp.write_text(f"{self._read_seq} {self._read_off}\n")
            os.replace(tmp, self.directory / "cursor")
        except OSError as exc:
            if not self._cursor_failed:  # once per failing spell: commits come several times a second
                log.warning("spool_cursor_write_failed error=%s detail=%r", error_name(exc), exc.strerror)
            self._cursor_failed = True
            _remove(tmp)
            _remove(self.directory / "cursor")
        else:
            if self._cursor_failed:
                log.info("spool_cursor_write_recovered")
            self._cursor_failed = False

    def _left_after(self, seq: int, idx: int) -> int:
        """Records from frame `idx` of segment `seq` to the end of the spool."""
        return sum(count for s, count in self._counts.items() if s >= seq) - idx

    # -- writing ---------------------------------------------------------------------------------

    def append(self, record: bytes) -> bool:
        """Append one record; False when the spool is full (or disabled). Raises SpoolError."""
        frame_len = _HEADER.size + len(record)
        if self.max_bytes <= 0 or self.disk_bytes + frame_len > self.max_bytes or len(record) > MAX_RECORD:
            return False
        if self._active is None or self._sizes[self._active] + frame_len > self.segment_bytes:
            try:
                self._rotate()
            except SpoolError as exc:
                if exc.errno in _FULL:
                    return False
                raise
        assert self._active is not None and self._active_fd is not None
        frame = _HEADER.pack(len(record), zlib.crc32(record)) + record
        size = self._sizes[self._active]
        try:
            written = os.write(self._active_fd, frame)
            if written != len(frame):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            try:
                os.ftruncate(self._active_fd, size)
            except OSError:
                self._retire_active()  # a partial frame stays beyond the sizes we read up to: never append after it
            if exc.errno in _FULL:
                return False
            raise SpoolError(exc.errno, f"spool write failed: {exc.strerror}") from None
        self._sizes[self._active] = size + frame_len
        self._counts[self._active] += 1
        self.disk_bytes += frame_len
        self.pending += 1
        return True

    def _rotate(self) -> None:
        seq = max(self._sizes, default=_FIRST_SEQ - 1) + 1
        try:
            fd = os.open(self.directory / _name(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise SpoolError(exc.errno, f"cannot create spool segment: {exc.strerror}") from None
        with self._fd_lock:
            if self._active_fd is not None:
                self._retired.append(self._active_fd)
            self._active, self._active_fd = seq, fd
        if not self.pending:
            self._read_seq, self._read_off, self._read_idx = seq, 0, 0
        self._sizes[seq] = 0
        self._counts[seq] = 0

    def _retire_active(self) -> None:
        """Stop appending to the active segment (closed by the next `sync()`)."""
        with self._fd_lock:
            if self._active_fd is not None:
                self._retired.append(self._active_fd)
            self._active, self._active_fd = None, None

    def prepend(self, records: list[bytes]) -> int:
        """Write records OLDER than everything spooled (shutdown); returns how many fit."""
        if self.max_bytes <= 0 or not records:
            return 0
        seq = min(self._sizes, default=_FIRST_SEQ) - 1
        buf = bytearray()
        count = 0
        for record in records:
            if self.disk_bytes + len(buf) + _HEADER.size + len(record) > self.max_bytes:
                break
            buf += _HEADER.pack(len(record), zlib.crc32(record)) + record
            count += 1
        if not count:
            return 0
        path = self.directory / _name(seq)
        try:
            with open(path, "wb") as f:
                f.write(buf)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            _remove(path)  # a partial file would be replayed although its events are counted as dropped
            raise
        self._sizes = {seq: len(buf), **self._sizes}
        self._counts = {seq: count, **self._counts}
        self.disk_bytes += len(buf)
        self.pending += count
        # The old head's offset is lost: replay may repeat it (idempotent).
        self._read_seq, self._read_off, self._read_idx = seq, 0, 0
        self._write_cursor()
        return count

    def sync(self) -> None:
        """fsync written data; safe to call from a worker thread."""
        with self._fd_lock:
            fds = [*self._retired, *([self._active_fd] if self._active_fd is not None else [])]
            retired, self._retired = self._retired, []
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError:
                pass
        for fd in retired:
            try:
                os.close(fd)
            except OSError:
                pass  # a deferred write error: the data is already as durable as it will get

    # -- reading ---------------------------------------------------------------------------------

    def read_batch(self, max_count: int, max_bytes: int) -> SpoolRead:
        """Up to `max_count` oldest records (at least one if any, else within `max_bytes`), or the
        loss of unreadable ones skipped over. Nothing is consumed until `commit`.

        Raises SpoolError, having consumed nothing, when a segment cannot be read now (EMFILE, EIO):
        the records are still on disk, so the caller retries later."""
        records: list[bytes] = []
        ends: list[Position] = []
        total = 0
        seq, off, idx = self._read_seq, self._read_off, self._read_idx
        for s in [s for s in self._sizes if s >= self._read_seq]:
            if s != seq:
                seq, off, idx = s, 0, 0
            end = self._sizes[s]
            if off >= end:
                continue
            lost: Position = (s, end, self._counts[s])
            try:
                with open(self.directory / _name(s), "rb") as f:
                    f.seek(off)
                    while off < end and len(records) < max_count:
                        payload = _read_frame(f, end - off)
                        if payload is None:
                            if records:
                                break  # this read returns records; the next one reports the loss
                            log.warning("spool_corrupt_frame segment=%s offset=%d events_lost=%d", _name(s), off, lost[2] - idx)
                            return SpoolRead([], [], lost, lost[2] - idx, 0)
                        if records and total + len(payload) > max_bytes:
                            return SpoolRead(records, ends, ends[-1], 0, 0)
                        off += _HEADER.size + len(payload)
                        idx += 1
                        records.append(payload)
                        ends.append((s, off, idx))
                        total += len(payload)
            except FileNotFoundError:
                if not records:
                    log.error("spool_segment_missing segment=%s events_lost=%d", _name(s), lost[2] - idx)
                    return SpoolRead([], [], lost, 0, lost[2] - idx)
            except OSError as exc:
                if not records:
                    log.warning("spool_read_failed segment=%s error=%s", _name(s), error_name(exc))
                    raise SpoolError(exc.errno, f"cannot read spool segment {_name(s)}: {exc.strerror}") from None
            if records and (len(records) >= max_count or off < end):
                break
        return SpoolRead(records, ends, ends[-1] if records else (seq, off, idx), 0, 0)

    def commit(self, position: Position) -> None:
        """Consume everything before `position` (from a SpoolRead): shipped, or lost and counted."""
        self._read_seq, self._read_off, self._read_idx = position
        for seq in [s for s in self._sizes if s < self._read_seq]:
            self._delete(seq)
        self.pending = self._left_after(self._read_seq, self._read_idx)
        if self.pending == 0:
            self._clear()
        else:
            self._write_cursor()

    def _delete(self, seq: int) -> None:
        if seq == self._active:
            self._retire_active()
        self.disk_bytes -= self._sizes.pop(seq)
        self._counts.pop(seq)
        _remove(self.directory / _name(seq))

    def _clear(self) -> None:
        """Everything shipped: drop all segments so the spool takes no disk at all."""
        for seq in list(self._sizes):
            self._delete(seq)
        self.disk_bytes = 0
        self._read_seq, self._read_off, self._read_idx = 0, 0, 0
        self._cursor_failed = False  # no cursor needed any more; a later failure is news again
        _remove(self.directory / "cursor")

    def close(self) -> None:
        self._retire_active()
        self.sync()
        if self._dir_lock_fd is not None:
            os.close(self._dir_lock_fd)  # releases the flock
            self._dir_lock_fd = None


def _lock_directory(directory: Path) -> int:
    """The fd holding an exclusive lock on the spool directory; SpoolError if another process holds it."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolError(errno.EBUSY, f"spool directory {directory} is in use by another sidecar; give each its own --spool-dir") from None
    return fd


def _read_frame(f: BinaryIO, room: int) -> bytes | None:
    """The payload of the frame at the file's position; None if it is torn, overlong or fails its CRC."""
    header = f.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    length, crc = _HEADER.unpack(header)
    if length > room - _HEADER.size:
        return None
    payload = f.read(length)
    return payload if len(payload) == length and zlib.crc32(payload) == crc else None


def _scan(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each whole, CRC-valid frame from the start of a segment."""
    off = 0
    while off + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, off)
        end = off + _HEADER.size + length
        if length > MAX_RECORD or end > len(data) or zlib.crc32(data[off + _HEADER.size : end]) != crc:
            return
        yield off, end
        off = end


def error_name(exc: OSError) -> str:
    """The errno's name (ENOSPC), for logs."""
    return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def _remove(path: Path) -> None:
    """Unlink if present; a failure is logged, not raised (a leftover file is replayed or overwritten)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("spool_unlink_failed file=%s error=%s", path.name, error_name(exc))
