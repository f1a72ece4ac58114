"""The package as a user gets it: built into a wheel, installed into an empty venv, run.

One build and one venv for the module (about 20 s in all). The build runs on a copy of
the source tree, so it never writes ``build/`` or ``*.egg-info`` into the work tree and
a stale ``build/lib`` cannot leak old files into the wheel. It needs PyPI (or the
configured index) for the build backend and the runtime dependencies.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from servers import chrome_headers, free_port

ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.1.0"
# Top-level files the build reads (pyproject's readme, license files, the manifest) when present.
BUILD_INPUTS = ("pyproject.toml", "README.md", "CHANGELOG.md", "MANIFEST.in", "LICENSE", "NOTICE")
EXTRAS = {"redis": {"redis", "hiredis"}, "postgres": {"psycopg"}, "flask": {"flask"}, "django": {"django"}}

pytestmark = pytest.mark.timeout(240)


def _ignored(_: str, names: list[str]) -> set[str]:
    # .so: the compiled request path of `make compile`, a local build (the default wheel is pure).
    return {n for n in names if n == "__pycache__" or n.startswith(".")
            or n.endswith((".pyc", ".pyo", ".egg-info", ".so"))}


def package_files(root: Path) -> set[str]:
    """Every file of the ``scrapeshield`` package in a source tree, as wheel paths."""
    return {
        p.relative_to(root).as_posix()
        for p in (root / "scrapeshield").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would make the test venv see this tree."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SCRAPESHIELD_")}


def run(args: list[str | Path], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env=clean_env(), timeout=timeout)


@dataclass(frozen=True)
class Built:
    source: Path  # the copy of the tree that was built
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    bin: Path
    workdir: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    # tests/ and bench/ come along so that leaving them out is something the build must do.
    for tree in ("scrapeshield", "tests", "bench"):
        shutil.copytree(ROOT / tree, source / tree, ignore=_ignored)
    for name in BUILD_INPUTS:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    out = tmp / "dist"
    # The default build: an sdist, then the wheel built from that sdist (so the sdist is complete).
    result = run([sys.executable, "-m", "build", "--outdir", out, source], cwd=tmp, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return Built(source, wheel, sdist)


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("venv")
    venv = tmp / "venv"
    result = run([sys.executable, "-m", "venv", venv], cwd=tmp)
    assert result.returncode == 0, result.stderr
    result = run([venv / "bin" / "python", "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", built.wheel], cwd=tmp, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    workdir = tmp / "work"  # not the source tree, so nothing can be imported from it
    workdir.mkdir()
    return Installed(venv / "bin", workdir)


# -- what the artifacts hold --------------------------------------------------------------


def test_wheel_holds_the_whole_package_and_nothing_else(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as whl:
        names = set(whl.namelist())
    dist_info = f"scrapeshield-{VERSION}.dist-info/"
    package = {n for n in names if not n.startswith(dist_info)}
    expected = package_files(built.source)
    assert package == expected, (
        f"missing from the wheel: {sorted(expected - package)}; "
        f"unexpected: {sorted(package - expected)} (see [tool.setuptools.package-data])"
    )
    for data in ("scrapeshield/py.typed", "scrapeshield/policy/default.yaml",
                 "scrapeshield/actions/challenge_page.html", "scrapeshield/actions/challenge.js",
                 "scrapeshield/demo/static/app.css", "scrapeshield/demo/static/app.js"):
        assert data in names
    assert not any(n.startswith(("tests/", "bench/", "docs/", "scripts/", "deploy/")) for n in names)
    assert {n.removeprefix(dist_info) for n in names - package} >= {"METADATA", "RECORD", "WHEEL",
                                                                    "entry_points.txt"}


def test_sdist_builds_the_same_package(built: Built) -> None:
    prefix = f"scrapeshield-{VERSION}/"
    with tarfile.open(built.sdist) as sdist:
        names = {m.name.removeprefix(prefix) for m in sdist.getmembers() if m.isfile()}
    assert package_files(built.source) <= names
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "PKG-INFO"} <= names
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_metadata(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as whl:
        meta = email.message_from_bytes(whl.read(f"scrapeshield-{VERSION}.dist-info/METADATA"))
        entry_points = whl.read(f"scrapeshield-{VERSION}.dist-info/entry_points.txt").decode()
    assert meta["Name"] == "scrapeshield" and meta["Version"] == VERSION
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.11"
    assert "Typing :: Typed" in meta.get_all("Classifier", [])
    assert {u.split(",")[0] for u in meta.get_all("Project-URL", [])} >= {"Homepage", "Documentation",
                                                                          "Changelog"}
    assert "scrapeshield = scrapeshield.cli:main" in entry_points
    # Each extra pulls only what it names; the runtime needs none of them.
    by_extra: dict[str, set[str]] = {}
    for req in meta.get_all("Requires-Dist", []):
        name = re.match(r"[A-Za-z0-9_.-]+", req)
        marker = re.search(r'extra == "([^"]+)"', req)
        assert name is not None
        by_extra.setdefault(marker.group(1) if marker else "", set()).add(name.group(0).lower())
    for extra, wanted in EXTRAS.items():
        assert by_extra.get(extra) == wanted, (extra, by_extra.get(extra))
    assert not by_extra[""] & set().union(*EXTRAS.values())
    # Semantic versioning, and the changelog has a section for this version.
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert re.search(rf"^## {re.escape(VERSION)}\b", (ROOT / "CHANGELOG.md").read_text(), re.M)


# -- the installed command ------------------------------------------------------------------


def test_installed_from_the_venv_not_the_tree(installed: Installed) -> None:
    result = run([installed.bin / "python", "-c", "import scrapeshield; print(scrapeshield.__file__)"],
                 cwd=installed.workdir)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_relative_to(installed.bin.parent)


def test_version(installed: Installed) -> None:
    result = run([installed.bin / "scrapeshield", "--version"], cwd=installed.workdir)
    assert result.returncode == 0, result.stderr
    # The default wheel is pure Python (docs/compiled.md), and says so.
    assert result.stdout.strip() == f"scrapeshield, version {VERSION} (request path: pure: not compiled)"


def test_default_policy_checks(installed: Installed) -> None:
    printed = run([installed.bin / "scrapeshield", "policy", "default"], cwd=installed.workdir)
    assert printed.returncode == 0, printed.stderr
    policy = installed.workdir / "policy.yaml"
    policy.write_text(printed.stdout)
    checked = run([installed.bin / "scrapeshield", "policy", "check", policy], cwd=installed.workdir)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{policy}: ok (")


@pytest.fixture(scope="module")
def demo(installed: Installed) -> Iterator[tuple[str, str]]:
    port, admin_port = free_port(), free_port()
    log_path = installed.workdir / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(installed.bin / "scrapeshield"), "demo", "--port", str(port), "--admin-port",
             str(admin_port), "--data-dir", str(installed.workdir / "data"), "--users", "100"],
            stdout=log, stderr=subprocess.STDOUT, cwd=installed.workdir,
            env={**clean_env(), "PYTHONUNBUFFERED": "1"},
        )
    url, admin_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"demo exited early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"demo did not start:\n{log_path.read_text()}"
            try:
                if httpx.get(admin_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, admin_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_demo_serves_the_site(demo: tuple[str, str]) -> None:
    url, admin_url = demo
    host = url.removeprefix("http://")
    with httpx.Client(base_url=url, headers=chrome_headers(host), timeout=10) as person:
        home = person.get("/")
        assert home.status_code == 200, home.text[:500]
        assert home.headers["content-type"].startswith("text/html")
        assert "x-scrapeshield-action" not in home.headers
        assert 'href="/u/' in home.text and "/static/app.css" in home.text
        css = person.get("/static/app.css", headers={"sec-fetch-dest": "style", "referer": url + "/"})
        assert css.status_code == 200 and css.content  # package data installed and served
        api = person.get("/api/v1/users/1", headers={"accept": "application/json",
                                                     "sec-fetch-mode": "cors", "sec-fetch-dest": "empty",
                                                     "referer": url + "/"})
        assert api.status_code == 200, api.text[:500]
        profile = api.json()
        assert profile["id"] == 1 and profile["username"]
    metrics = httpx.get(admin_url + "/metrics", timeout=10)
    assert metrics.status_code == 200
    assert 'scrapeshield_decisions_total{action="allow"}' in metrics.text
