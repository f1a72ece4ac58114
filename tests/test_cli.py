"""The command line as users run it: `scrapeshield …` and `python -m scrapeshield …` as processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from servers import ADMIN_TOKEN, chrome_headers, free_port, start_cli

from scrapeshield import _native

POLICIES = Path(__file__).parent / "policies"
BAD = sorted((POLICIES / "bad").glob("*.yaml"))
GOOD = sorted((POLICIES / "good").glob("*.yaml"))
SCRIPT = Path(sys.executable).with_name("scrapeshield")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPESHIELD_")}
    return {**env, **extra}


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scrapeshield", *args], capture_output=True,
                          text=True, cwd=cwd, env=env or clean_env(), timeout=timeout)


Checks = dict[tuple[str, bool], subprocess.CompletedProcess[str]]


def expected_error(path: Path) -> str:
    return path.read_text().splitlines()[0].removeprefix("# error: ")


# -- version and help -----------------------------------------------------------------------


def test_version_from_script_and_module() -> None:
    expected = version("scrapeshield")
    assert SCRIPT.exists(), SCRIPT
    script = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=30)
    module = run("--version")
    for result in (script, module):
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"scrapeshield, version {expected} (request path: {_native.status()})"


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ([], ["demo", "proxy", "policy", "--version"]),
        (["demo"], ["--users", "--seed", "--export-dataset", "--port", "--admin-port", "--policy",
                    "--data-dir", "SCRAPESHIELD_DATA_DIR", "--db", "--state"]),
        (["proxy"], ["--upstream", "--port", "--admin-port", "--policy", "--data-dir"]),
        (["policy"], ["check", "default"]),
        (["policy", "check"], ["FILE", "--json"]),
        (["policy", "default"], ["embedded"]),
    ],
    ids=["main", "demo", "proxy", "policy", "policy-check", "policy-default"],
)
def test_help(command: list[str], mentions: list[str]) -> None:
    for flag in ("--help", "-h"):
        result = run(*command, flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Usage: ") and not result.stderr
        for word in mentions:
            assert word in result.stdout, (word, result.stdout)


# -- policy check / policy default ----------------------------------------------------------


@pytest.fixture(scope="module")
def default_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run("policy", "default")
    assert result.returncode == 0 and "trusted_proxies" in result.stdout
    path = tmp_path_factory.mktemp("policy") / "default.yaml"
    path.write_text(result.stdout)
    return path


@pytest.fixture(scope="module")
def checks() -> Checks:
    """`policy check` (text and --json) for every fixture, run side by side to save time."""
    jobs = [(str(p), as_json) for p in BAD + GOOD for as_json in (False, True)]
    # Four at a time on two cores, each allowed 90 s: a helper saw the 30 s default run out with
    # eight at a time at load 7; a hang still runs into the time-out.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda job: run("policy", "check", job[0], *(["--json"] if job[1] else []),
                                           timeout=90), jobs)
        return dict(zip(jobs, results, strict=True))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_policy_check_good(path: Path, checks: Checks) -> None:
    text, as_json = checks[(str(path), False)], checks[(str(path), True)]
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"{path}: ok (") and not text.stderr
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == {"ok": True}


def test_policy_check_default_policy(default_policy: Path) -> None:
    result = run("policy", "check", str(default_policy))
    assert result.returncode == 0, result.stderr
    assert f"{default_policy}: ok" in result.stdout
    assert json.loads(run("policy", "check", "--json", str(default_policy)).stdout) == {"ok": True}
    # `policy default` prints the embedded text byte for byte, so it round-trips.
    assert default_policy.read_text() == run("policy", "default").stdout


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_policy_check_bad(path: Path, checks: Checks) -> None:
    expected = expected_error(path)
    text, as_json = checks[(str(path), False)], checks[(str(path), True)]
    assert text.returncode == 1, (text.stdout, text.stderr)
    assert "Traceback" not in text.stderr and not text.stdout
    assert f"{path}: invalid policy" in text.stderr
    assert expected in text.stderr, text.stderr  # e.g. "line 4: trusted_proxys: unknown key"
    assert as_json.returncode == 1 and not as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert any(expected in problem for problem in report["problems"]), report
    assert all(problem.startswith("line ") for problem in report["problems"]), report


def test_policy_check_unreadable_file(tmp_path: Path) -> None:
    missing = run("policy", "check", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1 and "cannot read file" in missing.stderr
    assert "Traceback" not in missing.stderr
    directory = run("policy", "check", str(tmp_path))
    assert directory.returncode == 2 and "is a directory" in directory.stderr


# -- the demo dataset -----------------------------------------------------------------------


def export(tmp: Path, name: str, users: int, seed: int) -> Path:
    path = tmp / name
    result = run("demo", "--export-dataset", str(path), "--users", str(users), "--seed", str(seed),
                 cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {users} users to {path}"
    return path


def test_export_dataset(tmp_path: Path) -> None:
    first = export(tmp_path, "a.jsonl", 50, 3)
    lines = first.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 50
    users = [json.loads(line) for line in lines]
    assert sorted(u["id"] for u in users) == list(range(1, 51))
    for user in users:
        assert isinstance(user["id"], int)
        assert isinstance(user["username"], str) and user["username"]
        assert isinstance(user["password"], str) and user["password"]
        assert user.get("phone") or user.get("email"), user
    assert len({u["username"] for u in users}) == 50
    # Every user has a personal field nobody else has.
    values = [v for u in users for v in (u.get("phone"), u.get("email")) if v]
    assert all(any(u.get(f) and values.count(u[f]) == 1 for f in ("phone", "email")) for u in users)
    # Deterministic: same seed, same bytes; another seed, another population.
    assert export(tmp_path, "b.jsonl", 50, 3).read_bytes() == first.read_bytes()
    assert export(tmp_path, "c.jsonl", 50, 4).read_bytes() != first.read_bytes()
    # Exporting is not serving: no data directory appears in the working directory.
    assert not (tmp_path / "scrapeshield-data").exists()


def test_export_dataset_to_unwritable_place(tmp_path: Path) -> None:
    result = run("demo", "--export-dataset", str(tmp_path / "no" / "such" / "dir.jsonl"), "--users", "5")
    assert result.returncode == 1
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


# -- bad options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--state", "nonsense"], "--state must be 'memory' or a redis:// URL"),
        (["demo", "--port", "99999"], "Invalid value for '--port': 99999 is not in the range"),
        (["demo", "--admin-port", "-1"], "Invalid value for '--admin-port'"),
        (["demo", "--users", "0"], "Invalid value for '--users'"),
        (["demo", "--seed", "x"], "Invalid value for '--seed'"),
        (["proxy", "--upstream", "ftp://x"], "upstream must be an http(s) URL, not 'ftp://x'"),
        (["proxy", "--upstream", "not a url"], "upstream must be an http(s) URL"),
        (["proxy"], "Missing option '--upstream'"),
        (["policy", "check"], "Missing argument 'FILE'"),
        (["nonsense"], "No such command 'nonsense'"),
        (["demo", "--no-such-option"], "No such option"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    if args[0] in ("demo", "proxy") and "--port" not in args and "--admin-port" not in args:
        # Free ports: a check that did not happen would start a server (and time out here).
        args = [*args, "--port", str(free_port()), "--admin-port", str(free_port())]
    result = run(*args, cwd=tmp_path, timeout=20)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Usage: ") and "Error: " in result.stderr
    assert message in result.stderr, result.stderr


def test_bad_policy_file_refuses_to_start(tmp_path: Path) -> None:
    bad = POLICIES / "bad" / "unknown-top-key.yaml"
    result = run("demo", "--users", "10", "--policy", str(bad), "--data-dir", str(tmp_path / "data"),
                 "--port", str(free_port()), "--admin-port", str(free_port()), timeout=20)
    assert result.returncode == 1
    assert expected_error(bad) in result.stderr and "Traceback" not in result.stderr


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = run("demo", "--users", "10", "--db", "nonsense://x", "--data-dir", str(tmp_path),
                 "--port", str(free_port()), "--admin-port", str(free_port()), timeout=20)
    assert result.returncode == 1, result.stderr
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("which", ["public", "admin"])
def test_port_in_use_is_a_clear_error(which: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = {"public": busy, "admin": free_port()} if which == "public" else {
            "public": free_port(), "admin": busy}
        # A hang (the bug this guards against) runs into the time-out; a loaded CI machine
        # may take well over 10 s just to start the demo, so no tighter clock is asserted.
        result = run("demo", "--users", "10", "--data-dir", str(tmp_path), "--port", str(ports["public"]),
                     "--admin-port", str(ports["admin"]), timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"cannot listen on 127.0.0.1:{busy}" in result.stderr
    assert "Traceback" not in result.stderr and "site:" not in result.stdout


@pytest.mark.parametrize("command", [["demo", "--users", "10"],
                                     ["serve-decisions", "--policy",
                                      str(Path(__file__).parents[1] / "deploy/policy-edge.yaml")]])
def test_same_public_and_admin_port_is_a_clear_error(command: list[str], tmp_path: Path) -> None:
    """Both ports the same (CI once handed a server one free port twice): it hung, because
    SO_REUSEADDR lets the second bind succeed and only the later listen() failed, in a task."""
    port = str(free_port())
    result = run(*command, "--data-dir", str(tmp_path), "--port", port, "--admin-port", port,
                 timeout=60)  # a hang runs into it
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# -- data directory and what a running demo prints ------------------------------------------


def wait_ready(process: subprocess.Popen[str], admin_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(admin_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("demo did not start")


@pytest.fixture
def stopped_after(request: pytest.FixtureRequest) -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_data_dir_from_environment(tmp_path: Path, stopped_after: list[subprocess.Popen[str]]) -> None:
    data, cwd = tmp_path / "from-env", tmp_path / "cwd"
    cwd.mkdir()
    port, admin_port = free_port(), free_port()
    env = clean_env(SCRAPESHIELD_DATA_DIR=str(data), SCRAPESHIELD_ADMIN_TOKEN=ADMIN_TOKEN,
                    PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "scrapeshield", "demo", "--users", "50", "--port", str(port),
         "--admin-port", str(admin_port)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped_after.append(process)
    wait_ready(process, f"http://127.0.0.1:{admin_port}")
    assert (data / "scrapeshield.db").is_file()
    assert (data / "secret.key").is_file()
    assert not (cwd / "scrapeshield-data").exists()
    assert httpx.get(f"http://127.0.0.1:{port}/robots.txt").status_code == 200
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert f"  data:  {data}" in out
    assert "Traceback" not in err


def test_demo_prints_both_urls_and_data_dir_beats_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "not-this-one"
    monkeypatch.setenv("SCRAPESHIELD_DATA_DIR", str(elsewhere))
    data = tmp_path / "data"
    data.mkdir()
    server = start_cli(["demo", "--users", "50", "--seed", "2"], data)
    try:
        # Ready (admin /healthz answers) may come a moment before the banner is printed.
        deadline = time.monotonic() + 10
        while "  data:  " not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = server.log()
        assert f"  site:  {server.url}/" in log
        assert f"  admin: {server.admin_url}/" in log
        assert f"  data:  {data.resolve()}" in log
        assert "demo social network (50 users, seed 2)" in log
        home = httpx.get(server.url + "/", headers=chrome_headers(server.url.removeprefix("http://")))
        assert home.status_code == 200 and "Murmur" in home.text
        with server.admin() as admin:
            assert "trusted_proxies" in admin.get("/api/policy").text
        assert (data / "scrapeshield.db").is_file() and not elsewhere.exists()
    finally:
        server.stop()
    assert server.process.returncode == 0
