"""Reading log files in chunks of whole lines: plain or gzip, truncated or not.

A damaged file never stops the replay: a truncated or corrupt gzip stream yields every
line decoded before the damage and a ``Problem`` that says where it stopped.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 32 * 1024 * 1024  # lines are handed on in blocks of about this size
_READ = 4 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with a file or a line: ``line`` 0 means the file as a whole."""

    file: str
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole lines of one file; ``first_line`` is the 1-based number of the first."""

    file: str
    first_line: int
    data: bytes

    @property
    def lines(self) -> int:
        if not self.data:
            return 0
        return self.data.count(b"\n") + (0 if self.data.endswith(b"\n") else 1)


def read_chunks(path: str | Path, problems: list[Problem], chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Chunks of whole lines; whatever goes wrong is appended to ``problems``."""
    name = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        problems.append(Problem(name, 0, f"cannot open: {exc.strerror or exc}"))
        return
    line = 1
    pending = b""
    try:
        head = handle.read(2)
        handle.seek(0)
        blocks = _gunzip(handle, name, problems) if head == _GZIP_MAGIC else _plain(handle, name, problems)
        for block in blocks:
            pending += block
            if len(pending) < chunk_bytes:
                continue
            cut = pending.rfind(b"\n") + 1
            if cut == 0:
                continue  # one enormous line so far: keep reading
            chunk = Chunk(name, line, pending[:cut])
            pending = pending[cut:]
            line += chunk.lines
            yield chunk
        if pending:
            yield Chunk(name, line, pending)
    finally:
        handle.close()


def _plain(handle: object, name: str, problems: list[Problem]) -> Iterator[bytes]:
    read = handle.read  # type: ignore[attr-defined]
    while True:
        try:
            block: bytes = read(_READ)
        except OSError as exc:
            problems.append(Problem(name, 0, f"read error: {exc.strerror or exc}"))
            return
        if not block:
            return
        yield block


def _gunzip(handle: object, name: str, problems: list[Problem]) -> Iterator[bytes]:
    """Decompress member after member; report a truncated or corrupt stream and stop there."""
    inflate = zlib.decompressobj(wbits=31)
    produced = 0
    for block in _plain(handle, name, problems):
        while block:
            try:
                out = inflate.decompress(block)
            except zlib.error as exc:
                problems.append(
                    Problem(
                        name,
                        0,
                        f"corrupt gzip data after {produced} bytes ({exc}); the rest of the file is skipped",
                    )
                )
                return
            produced += len(out)
            yield out
            block = inflate.unused_data if inflate.eof else b""
            if block:
                inflate = zlib.decompressobj(wbits=31)  # the next gzip member
    if not inflate.eof:
        problems.append(
            Problem(
                name,
                0,
                f"truncated gzip: the stream ends early, after {produced} bytes; lines up to there are read",
            )
        )
