"""Events the sink could not take, kept on disk in order until it can (JSON lines, fsync'd).

``<dir>/events-<slot>.jsonl`` holds appended batches; ``events-<slot>.offset`` says how
many bytes of it were delivered. A batch is appended and fsync'd in one write, so a
crash loses at most the batch being written (a torn last line is cut off on open).
Delivery is at least once — a crash between the sink's commit and the offset's
leaves the batch to send again — and the sink makes it exactly once by the events'
``uid``. When everything is delivered the file is emptied; when the bound is reached
while part of it is delivered, the rest is copied to a new file first (the offset is
reset before the swap: a crash re-sends, never skips). Each process holds one slot
(an flock on ``events-<slot>.lock``), so several processes can share a data directory;
a restarted process takes the first free slot and delivers what a previous one left.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger("scrapeshield.events")

SLOTS = 64


class SpoolFull(Exception):
    """Appending would pass ``max_bytes``."""


class EventSpool:
    def __init__(self, directory: Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock, self.path = _take_slot(directory)
        self._offset_path = self.path.with_suffix(".offset")
        self._file = open(self.path, "a+b")  # O_APPEND, held for the spool's life
        self._cut_torn_tail()
        self.size = os.fstat(self._file.fileno()).st_size
        self.offset = self._read_offset()
        self.pending_events = self._count_lines(self.offset)
        if self.pending_events:
            log.warning("%d undelivered events found in %s", self.pending_events, self.path)

    @property
    def pending_bytes(self) -> int:
        return self.size - self.offset

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write one batch and fsync it; ``SpoolFull`` (nothing written) past the bound."""
        data = b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)
        if self.size + len(data) > self.max_bytes and self.offset:
            self._compact()
        if self.size + len(data) > self.max_bytes:
            raise SpoolFull(f"{self.path}: {self.size} + {len(data)} bytes > {self.max_bytes}")
        written = os.write(self._file.fileno(), data)  # O_APPEND: always at the end
        if written != len(data):
            os.ftruncate(self._file.fileno(), self.size)
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
        os.fsync(self._file.fileno())
        self.size += len(data)
        self.pending_events += len(rows)

    def read(self, limit: int) -> tuple[list[dict[str, Any]], int, int]:
        """Up to ``limit`` undelivered events, oldest first; the offset past them; lines read."""
        rows: list[dict[str, Any]] = []
        position, lines = self.offset, 0
        with open(self.path, "rb") as handle:
            handle.seek(position)
            while lines < limit:
                line = handle.readline()
                if not line.endswith(b"\n"):
                    break
                position += len(line)
                lines += 1
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    log.error("skipping an unreadable line at byte %d of %s", position - len(line), self.path)
        return rows, position, lines

    def commit(self, position: int, lines: int) -> None:
        """Everything before ``position`` is delivered; empty the file once all of it is."""
        self.offset = position
        self.pending_events = max(0, self.pending_events - lines)
        if self.offset >= self.size:
            os.ftruncate(self._file.fileno(), 0)
            os.fsync(self._file.fileno())
            self.size = self.offset = self.pending_events = 0
        self._write_offset()

    def close(self) -> None:
        self._file.close()
        self._lock.close()  # releases the slot

    # -- internals ----------------------------------------------------------------

    def _cut_torn_tail(self) -> None:
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        if not size:
            return
        keep = size
        while keep > 0:
            step = min(65536, keep)
            chunk = os.pread(fd, step, keep - step)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = keep - step + newline + 1
                break
            keep -= step
        if keep != size:
            log.error("cutting a torn last write (%d bytes) from %s", size - keep, self.path)
            os.ftruncate(fd, keep)
            os.fsync(fd)

    def _compact(self) -> None:
        """Keep only the undelivered part: copy, fsync, offset 0, swap (a crash re-sends)."""
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(self.path, "rb") as source, open(tmp, "wb") as target:
            source.seek(self.offset)
            for block in iter(lambda: source.read(1 << 20), b""):
                target.write(block)
            target.flush()
            os.fsync(target.fileno())
        self.offset = 0
        self._write_offset()
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self._file.close()
        self._file = open(self.path, "a+b")
        self.size = os.fstat(self._file.fileno()).st_size

    def _read_offset(self) -> int:
        try:
            offset = int(self._offset_path.read_text().strip() or 0)
        except (OSError, ValueError):
            offset = 0
        return offset if 0 <= offset <= self.size else 0  # a file emptied before its offset was

    def _write_offset(self) -> None:
        tmp = self._offset_path.with_suffix(".offset.tmp")
        with open(tmp, "w") as handle:
            handle.write(str(self.offset))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._offset_path)

    def _count_lines(self, start: int) -> int:
        count = 0
        with open(self.path, "rb") as handle:
            handle.seek(start)
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
        return count


def _take_slot(directory: Path) -> tuple[BinaryIO, Path]:
    for slot in range(SLOTS):
        lock = open(directory / f"events-{slot}.lock", "a+b")  # held for the spool's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        path = directory / f"events-{slot}.jsonl"
        path.touch()
        _fsync_dir(directory)  # the file's name is durable before anything is spooled into it
        return lock, path
    raise OSError(f"all {SLOTS} event spool slots in {directory} are held by other processes")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
