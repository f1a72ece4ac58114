"""settle_heap: a serving process's startup heap leaves the collector's full passes."""

from __future__ import annotations

import subprocess
import sys


def test_settle_heap_freezes_what_startup_built_and_collects_garbage_first() -> None:
    # In a fresh interpreter: freezing the test process would keep its cycles for good.
    script = (
        "import gc\n"
        "from scrapeshield.hosts.heap import settle_heap\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"  # a cycle that is garbage
        "import weakref; gone = weakref.ref(a); del a, b\n"
        "kept = [Node() for _ in range(1000)]\n"
        "settle_heap()\n"
        "assert gone() is None, 'garbage was frozen instead of collected'\n"
        "assert gc.get_freeze_count() >= 1000\n"
        "assert not any(o is kept for o in gc.get_objects()), 'live objects still scanned'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
