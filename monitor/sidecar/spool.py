"""A bounded, append-only on-disk spool of serialized events, replayed in order.

Layout: `<dir>/<seq>.seg` segment files of frames `[u32 length][u32 crc32][payload]` (big-endian),
and `<dir>/cursor` ("<seq> <offset>": where replay resumes). Writes go straight to the file with
`os.write` (no user-space buffer), so a killed process loses nothing it appended; `sync()` fsyncs
(the shipper calls it every `fsync_interval` from a worker thread), so a power loss loses at most
that interval. A frame torn by a crash fails its length/CRC check: the rest of that segment is
skipped (counted as one `corrupt` drop) and the file is truncated to its last whole frame.

One process owns a spool directory at a time (an exclusive `flock` on `<dir>/lock`): a second
sidecar pointed at it, e.g. two of the same model on one host with the default directory, would
truncate and delete the first one's segments.

The cursor is a hint written without fsync: replay may repeat up to one segment after a crash,
which the monitor's idempotency by event id absorbs. Not thread-safe except `sync()`.
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

__all__ = ["Spool", "SpoolError"]

log = logging.getLogger("driftwatch.sidecar.spool")
_HEADER = struct.Struct(">II")
_FIRST_SEQ = 10**12  # leaves room below for segments prepended at shutdown (older events)
MAX_RECORD = 64 * 1024**2


class SpoolError(OSError):
    """The spool could not be written for a reason other than being full."""


def _name(seq: int) -> str:
    return f"{seq:020d}.seg"


class Spool:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = 8 * 1024**2) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._sizes: dict[int, int] = {}  # seq -> bytes of whole frames, ascending by seq
        self._active: int | None = None
        self._active_fd: int | None = None
        self._retired: list[int] = []  # fds of full segments, fsynced and closed by sync()
        self._fd_lock = threading.Lock()
        self._dir_lock_fd: int | None = None
        self._read_seq = 0
        self._read_off = 0
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
            self.disk_bytes += end
            if seq == cursor_seq and cursor_off in {0, *(e for _, e in offsets)}:
                cursor_ok = True
                self.pending += sum(1 for start, _ in offsets if start >= cursor_off)
            else:
                self.pending += len(offsets)
        if self._sizes:
            first = min(self._sizes)
            self._read_seq = first
            self._read_off = cursor_off if first == cursor_seq and cursor_ok else 0
        if self.pending == 0:
            self._clear()

    def _read_cursor(self) -> tuple[int, int]:
        try:
            seq, off = (self.directory / "cursor").read_text().split()
            return int(seq), int(off)
        except (OSError, ValueError):
            return 0, 0

    def _write_cursor(self) -> None:
        tmp = self.directory / "cursor.tmp"
        tmp.write_text(f"{self._read_seq} {self._read_off}\n")
        os.replace(tmp, self.directory / "cursor")

    # -- writing ---------------------------------------------------------------------------------

    def append(self, record: bytes) -> bool:
        """Append one record; False when the spool is full (or disabled). Raises SpoolError."""
        frame_len = _HEADER.size + len(record)
        if self.max_bytes <= 0 or self.disk_bytes + frame_len > self.max_bytes or len(record) > MAX_RECORD:
            return False
        if self._active is None or self._sizes[self._active] + frame_len > self.segment_bytes:
            self._rotate()
        assert self._active is not None and self._active_fd is not None
        frame = _HEADER.pack(len(record), zlib.crc32(record)) + record
        size = self._sizes[self._active]
        try:
            written = os.write(self._active_fd, frame)
            if written != len(frame):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            os.ftruncate(self._active_fd, size)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return False
            raise SpoolError(exc.errno, f"spool write failed: {exc.strerror}") from None
        self._sizes[self._active] = size + frame_len
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
            self._read_seq, self._read_off = seq, 0
        self._sizes[seq] = 0

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
        with open(path, "wb") as f:
            f.write(buf)
            f.flush()
            os.fsync(f.fileno())
        self._sizes = {seq: len(buf), **self._sizes}
        self.disk_bytes += len(buf)
        self.pending += count
        self._read_seq, self._read_off = seq, 0  # the old head's offset is lost: replay may repeat it (idempotent)
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
            os.close(fd)

    # -- reading ---------------------------------------------------------------------------------

    def read_batch(self, max_count: int, max_bytes: int) -> tuple[list[bytes], tuple[int, int], int]:
        """Up to `max_count` oldest records (at least one if any), the position after them and
        how many corrupt frames were skipped. Nothing is consumed until `commit`."""
        records: list[bytes] = []
        corrupt = 0
        total = 0
        seq, off = self._read_seq, self._read_off
        seqs = [s for s in self._sizes if s >= seq]
        for i, s in enumerate(seqs):
            if s != seq:
                off = 0
            seq = s
            end = self._sizes[s]
            if off < end:
                with open(self.directory / _name(s), "rb") as f:
                    f.seek(off)
                    while off < end and len(records) < max_count:
                        header = f.read(_HEADER.size)
                        if len(header) < _HEADER.size:
                            corrupt, off = corrupt + 1, end
                            break
                        length, crc = _HEADER.unpack(header)
                        if records and total + length > max_bytes:
                            return records, (seq, off), corrupt
                        payload = f.read(length) if length <= end - off - _HEADER.size else b""
                        if len(payload) != length or zlib.crc32(payload) != crc:
                            log.warning("spool_corrupt_frame segment=%s offset=%d", _name(s), off)
                            corrupt, off = corrupt + 1, end
                            break
                        records.append(payload)
                        total += length
                        off += _HEADER.size + length
            if len(records) >= max_count:
                break
            if off >= end and s != self._active and i + 1 < len(seqs):
                continue
            break
        return records, (seq, off), corrupt

    def commit(self, position: tuple[int, int], count: int) -> None:
        """Mark records up to `position` (returned by read_batch) as shipped."""
        self._read_seq, self._read_off = position
        self.pending = max(0, self.pending - count)
        for seq in [s for s in self._sizes if s < self._read_seq]:
            self._delete(seq)
        if self.pending == 0:
            self._clear()
        else:
            self._write_cursor()

    def _delete(self, seq: int) -> None:
        if seq == self._active:
            with self._fd_lock:
                if self._active_fd is not None:
                    self._retired.append(self._active_fd)
                self._active, self._active_fd = None, None
        self.disk_bytes -= self._sizes.pop(seq)
        (self.directory / _name(seq)).unlink(missing_ok=True)

    def _clear(self) -> None:
        """Everything shipped: drop all segments so the spool takes no disk at all."""
        for seq in list(self._sizes):
            self._delete(seq)
        self.disk_bytes = 0
        self._read_seq, self._read_off = 0, 0
        (self.directory / "cursor").unlink(missing_ok=True)

    def close(self) -> None:
        self.sync()
        with self._fd_lock:
            if self._active_fd is not None:
                os.close(self._active_fd)
            self._active, self._active_fd = None, None
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
