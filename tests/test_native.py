"""The compiled request path (`make compile`, scrapeshield/_native.py): current, used, equivalent.

`make test` compiles first and sets SCRAPESHIELD_EXPECT_COMPILED=1: the compiled modules must
then really be the ones running. Without a build these tests check the pure package only.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scrapeshield import _native

ROOT = Path(__file__).resolve().parents[1]
EXPECT_COMPILED = os.environ.get("SCRAPESHIELD_EXPECT_COMPILED") == "1"
BUILT = any(
    (ROOT / p).with_name(Path(p).stem + suffix).exists()
    for p in _native.MODULES
    for suffix in importlib.machinery.EXTENSION_SUFFIXES
)
needs_build = pytest.mark.skipif(not BUILT and not EXPECT_COMPILED, reason="no compiled build (make compile)")

# Decisions for a reproducible mix of people and scrapers (500 clients, so limits and detectors
# fire), as JSON: run under the pure and the compiled modules, they must be the same.
DECISIONS = """
import json, sys
sys.path.insert(0, {root!r})
from bench.traffic import scopes
from scrapeshield import _native
from scrapeshield.clock import ManualClock
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
import scrapeshield.engine
clock = ManualClock()
shield = Shield(Settings.resolve(data_dir={data!r}), clock)
out = []
for scope in scopes(6000, clients=500, seed=7):
    clock.advance(0.01)
    d = shield.engine.decide(shield.engine.contexts.from_asgi(scope, clock.now()))
    out.append([d.action.value, round(d.score, 6), list(d.reasons), d.rule, d.retry_after, d.client])
shield.close()
print(json.dumps({{"status": _native.status(), "engine": scrapeshield.engine.__file__, "out": out}}))
"""


def run(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPESHIELD_")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env={**environ, **env}, timeout=120)


def test_the_build_in_use_matches_the_sources() -> None:
    """A stale build is never used; under `make test` the compiled modules are the ones running."""
    assert not _native.status().startswith("pure: stale"), _native.status()
    if EXPECT_COMPILED:
        assert _native.status() == "compiled"
        for path in _native.MODULES:
            module = importlib.import_module(_native.module_name(path))
            assert module.__file__ is not None and not module.__file__.endswith(".py"), module.__file__


@needs_build
def test_pure_and_compiled_modules_decide_alike(tmp_path: Path) -> None:
    compiled = run(DECISIONS.format(root=str(ROOT), data=str(tmp_path / "a")), ROOT)
    pure = run(DECISIONS.format(root=str(ROOT), data=str(tmp_path / "b")), ROOT, SCRAPESHIELD_PURE="1")
    assert compiled.returncode == 0 and pure.returncode == 0, compiled.stderr[-2000:] + pure.stderr[-2000:]
    fast, slow = json.loads(compiled.stdout), json.loads(pure.stdout)
    assert (fast["status"], slow["status"]) == ("compiled", "pure: SCRAPESHIELD_PURE is set")
    assert not fast["engine"].endswith(".py") and slow["engine"].endswith("engine.py")
    actions = {row[0] for row in slow["out"]}
    assert {"allow", "challenge"} <= actions  # the mix exercises more than one path
    assert fast["out"] == slow["out"]


@needs_build
def test_an_edited_source_runs_instead_of_its_older_build(tmp_path: Path) -> None:
    """Copied with its build, the package runs compiled; once one source changes, the sources run."""
    shutil.copytree(ROOT / "scrapeshield", tmp_path / "scrapeshield",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    probe = ("import scrapeshield.engine, scrapeshield.score as s; from scrapeshield import _native; "
             "print(_native.status()); print(scrapeshield.engine.__file__); print(s.EDITED)")
    before = run(probe.replace("print(s.EDITED)", ""), tmp_path)
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines()[0] == "compiled"

    score = tmp_path / "scrapeshield" / "score.py"
    score.write_text(score.read_text() + "\nEDITED = 'the new source runs'\n")
    after = run(probe, tmp_path)
    assert after.returncode == 0, after.stderr
    status, engine, edited = after.stdout.splitlines()
    assert status.startswith("pure: stale build (scrapeshield.score changed")
    assert engine.endswith("engine.py") and edited == "the new source runs"
    assert "older than their sources (scrapeshield.score)" in after.stderr
