"""Chunks of whole lines, whatever the chunk size: every byte once, lines numbered from 1.

The reader cuts plain files at a chunk's last newline and reads the rest again with the next
chunk; a line longer than a chunk is carried whole. Random files (empty lines, a last line
with or without its newline) are read at chunk sizes from one byte up, plain and gzip.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from scrapeshield.forensics.reader import Problems, read_chunks


def line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_every_byte_once_in_whole_lines(tmp_path: Path, compressed: bool) -> None:
    rng = random.Random(4)
    path = tmp_path / "x.log"
    for _ in range(120):
        lines = [b"x" * rng.choice([0, 1, 5, 17, 40, 100]) for _ in range(rng.randint(0, 40))]
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        path.write_bytes(gzip.compress(data) if compressed else data)
        for size in (1, 7, 16, 33, 64, 1000):
            problems = Problems()
            chunks = list(read_chunks(path, problems, chunk_bytes=size))
            assert b"".join(c.data for c in chunks) == data
            assert not problems
            number = 1
            for chunk in chunks:
                assert chunk.first_line == number
                assert chunk is chunks[-1] or chunk.data.endswith(b"\n")
                number += chunk.lines
            assert number - 1 == line_count(data)
