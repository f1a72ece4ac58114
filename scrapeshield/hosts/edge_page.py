"""The challenge page for an edge proxy that fills it in itself (deploy/nginx/scrapeshield.conf).

nginx's auth request gets a challenge's one per-challenge part (``page_data``: ASCII JSON on one
line) in a response header; nginx serves this file with that header's value put in place of
MARKER (sub_filter). So a challenged request costs the decision service one request, not two
(the auth request, then the page). ``scrapeshield serve-decisions --challenge-page FILE`` writes
the file at every start, so it always matches the running version's script and verify path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from scrapeshield.actions.challenge import VERIFY_PATH
from scrapeshield.actions.challenge_page import page_parts

MARKER = "@@scrapeshield-challenge-data@@"


def template() -> bytes:
    """The challenge page with MARKER where one challenge's data goes."""
    before, after = page_parts(VERIFY_PATH)
    if MARKER.encode() in before or MARKER.encode() in after:
        raise RuntimeError(f"the challenge page already holds {MARKER!r}")
    return before + MARKER.encode() + after


def write_template(path: str | Path) -> Path:
    """Write the page to ``path`` (whole or not at all: nginx may be serving the old one)."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".challenge-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(template())
        os.chmod(tmp, 0o644)  # nginx's workers run as another user
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
