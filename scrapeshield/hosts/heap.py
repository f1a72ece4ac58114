"""Keep what a serving process built at startup out of the garbage collector's full passes.

A full pass scans every tracked object while holding the GIL. Startup builds a large heap that
lives as long as the process (the policy, user-agent lists, SQLAlchemy and pydantic models,
the host framework), and under load a full pass comes every few seconds: on the bench machine
each took 100-240 ms with it and 15-65 ms without, and those pauses were the served p99.

Call ``settle_heap()`` once, after the application and the shield are built and started
(``scrapeshield proxy``/``demo``/``serve-decisions`` do; a gunicorn or uvicorn factory that
embeds the middleware should, as its last step). Garbage is collected first. Frozen objects
are still freed when their last reference goes; only a reference cycle among them would stay,
which is why this is for a serving process's startup, not for a library call in a loop.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    gc.collect()
    gc.freeze()
