"""The compiled request path: which modules `make compile` builds, and a guard against stale builds.

``scripts/compile.py`` compiles the modules below with mypyc into C extensions next to their
sources (about twice as fast per decision), together with a manifest module holding the hash of
each source it compiled. Python imports an extension in preference to the ``.py`` of the same
name, so an edited ``.py`` next to an older build would silently run the old code. At import,
``scrapeshield`` therefore compares the manifest with the sources: on any difference, a missing
manifest, or with ``SCRAPESHIELD_PURE=1``, every compiled module is loaded from its ``.py``
instead (they call each other natively inside one library, so it is all or nothing), and a
stale build is logged. Standard library only: this runs before anything else of the package.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# The hot path of one decision (see bench/inprocess.py), as paths from the repository root.
# Left out on purpose: goodbots/verify.py and jobs.py (a private attribute named
# ``_thread``/``_inline`` becomes a C keyword in mypyc's output), privacy/levels.py (it unpacks
# SQLAlchemy rows, which its types call tuples: compiled code checks that, and they are not),
# actions/challenge.py (hosts and their tests replace a ChallengeService's methods, which a
# compiled class refuses; its token issuing (challenge_token.py), MACs, page and reply
# helpers are compiled).
MODULES = (
    "scrapeshield/context.py",
    "scrapeshield/actions/hold.py",
    "scrapeshield/actions/values.py",
    "scrapeshield/actions/challenge_page.py",
    "scrapeshield/actions/challenge_token.py",
    "scrapeshield/actions/responses.py",
    "scrapeshield/keyed_hash.py",
    "scrapeshield/engine.py",
    "scrapeshield/state/memory.py",
    "scrapeshield/state/client.py",
    "scrapeshield/state/layout.py",
    "scrapeshield/score.py",
    "scrapeshield/decide.py",
    "scrapeshield/types.py",
    "scrapeshield/lists.py",
    "scrapeshield/policy/compiled.py",
    "scrapeshield/goodbots/hosting.py",
    "scrapeshield/goodbots/ranges.py",
    "scrapeshield/legal/collector.py",
    "scrapeshield/console/monitor.py",
    "scrapeshield/signals/accounts.py",
    "scrapeshield/signals/activity.py",
    "scrapeshield/signals/base.py",
    "scrapeshield/signals/campaign.py",
    "scrapeshield/signals/catalog.py",
    "scrapeshield/signals/enumeration.py",
    "scrapeshield/signals/goodbots.py",
    "scrapeshield/signals/headers.py",
    "scrapeshield/signals/honeypot.py",
    "scrapeshield/signals/navigation.py",
    "scrapeshield/signals/pacing.py",
    "scrapeshield/signals/registry.py",
    "scrapeshield/signals/search.py",
    "scrapeshield/signals/shared.py",
    "scrapeshield/signals/tls.py",
    "scrapeshield/signals/user_agent.py",
    "scrapeshield/hosts/edge_server.py",
    "scrapeshield/hosts/auth_request.py",
    "scrapeshield/hosts/wsgi.py",
    "scrapeshield/events.py",
)
GROUP = "scrapeshield._native"  # mypyc's shared library: scrapeshield/_native__mypyc*.so
MANIFEST = "scrapeshield._native_sources"  # generated and compiled by scripts/compile.py only
ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger("scrapeshield.native")
_status = "pure: not compiled"


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def source_hash(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _compiled() -> dict[str, Path]:
    """Every module of the package with an extension file next to its ``.py`` (name → source).

    The whole package, not only ``MODULES``: a module dropped from the list may have left an
    older build behind. (About 30 folders and 300 files: about a millisecond.)
    """
    found: dict[str, Path] = {}
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for folder, subfolders, files in os.walk(ROOT / "scrapeshield"):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        for file in files:
            suffix = next((s for s in suffixes if file.endswith(s)), "")
            if suffix:
                source = Path(folder) / (file.removesuffix(suffix) + ".py")
                if source.exists():
                    found[module_name(source.relative_to(ROOT).as_posix())] = source
    return found


def _stale(built: dict[str, Path], sources: dict[str, Path]) -> list[str]:
    """The modules whose source differs from what was compiled into the library (or is unknown).

    Every module of the manifest counts, extension file or not: compiled modules call each
    other inside the library, so a changed source is stale even where its own shim is gone.
    """
    try:
        manifest: dict[str, str] = importlib.import_module(MANIFEST).SOURCES
    except Exception:  # no manifest, or a library this interpreter cannot load
        return sorted(built)
    changed = {name for name in built if name not in manifest}
    for name, digest in manifest.items():
        source = sources.get(name)
        if source is None or not source.exists() or source_hash(source) != digest:
            changed.add(name)
    return sorted(changed)


class _Sources:
    """A meta path finder that loads the listed modules from their ``.py``, not their extension."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        source = self.sources.get(name)
        return None if source is None else importlib.util.spec_from_file_location(name, source)


def activate() -> None:
    """Use the compiled modules only if they were built from the sources as they are now."""
    global _status
    built = _compiled()
    if not built:
        return
    sources = {**{module_name(p): ROOT / p for p in MODULES}, **built}
    if os.environ.get("SCRAPESHIELD_PURE", "") not in ("", "0"):
        _status = "pure: SCRAPESHIELD_PURE is set"
    else:
        stale = _stale(built, sources)
        if not stale:
            _status = "compiled"
            return
        _status = f"pure: stale build ({', '.join(stale)} changed since `make compile`)"
        log.warning("compiled modules are older than their sources (%s): running the pure-Python "
                    "modules instead; `make compile` rebuilds them", ", ".join(stale))
    sys.meta_path.insert(0, _Sources(sources))


def status() -> str:
    """"compiled", or why the pure-Python modules run (for `scrapeshield --version` and tests)."""
    return _status
