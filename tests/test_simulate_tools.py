"""The simulator's clients send what the real tools send: each tool makes a request to a raw
socket server that records the header lines, and the simulated template must have the same
header names in the same order and the same values (version digits aside).

Names that depend on the connection rather than the client (Host placement, Connection,
HTTP/2 upgrade, Priority, which only HTTP/2 carries) are left out of the comparison."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import launch_chromium

from scrapeshield.simulate.clients import CURL_CFFI, FIREFOX_LINUX, HEADLESS, HTTPX, REQUESTS, SCRAPY
from scrapeshield.simulate.tools import Tool

CONNECTION_LEVEL = {"host", "connection", "upgrade", "http2-settings", "priority", "cache-control"}


class Recorder:
    """Accepts connections, keeps each request's header lines, answers a tiny page."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.heads: dict[str, list[tuple[str, str]]] = {}
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if lines and " " in lines[0] else ""
                self.heads[path] = [(k.strip().lower(), v.strip()) for k, _, v in
                                    (line.partition(":") for line in lines[1:])]
                name = path.strip("/").encode() or b"index"  # sub-resources per page: no mix-ups
                body = (b'<html><head><link rel="stylesheet" href="/' + name + b'.css"></head>'
                        b'<body><img src="/' + name + b'.png">ok</body></html>')
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.sock.close()


def _names(headers: list[tuple[str, str]]) -> list[str]:
    return [n for n, _ in headers if n not in CONNECTION_LEVEL]


def _same(tool: Tool, sent: list[tuple[str, str]], **page: str) -> None:
    simulated = tool.page("h", **page)
    assert _names(simulated) == _names(sent)
    digits = re.compile(r"\d+")
    real = {n: digits.sub("N", v) for n, v in sent}
    for name, value in simulated:
        if name not in CONNECTION_LEVEL:
            assert digits.sub("N", value) == real[name], name


def test_python_libraries(recorder: Recorder) -> None:
    import httpx
    import requests

    httpx.get(recorder.url + "/httpx")
    requests.get(recorder.url + "/requests", timeout=10)
    _same(HTTPX, recorder.heads["/httpx"])
    _same(REQUESTS, recorder.heads["/requests"])


def test_curl_cffi_as_chrome(recorder: Recorder) -> None:
    from curl_cffi import requests as cffi

    cffi.get(recorder.url + "/cffi", impersonate="chrome", timeout=10)
    _same(CURL_CFFI, recorder.heads["/cffi"])


def test_scrapy(recorder: Recorder) -> None:
    subprocess.run([sys.executable, "-m", "scrapy", "fetch", "--nolog", recorder.url + "/scrapy"],
                   check=True, capture_output=True, timeout=60)
    sent = recorder.heads["/scrapy"]
    assert [n for n, _ in sent][-1] == "host"  # Twisted writes it last, as simulated
    _same(SCRAPY, sent)


def test_headless_chromium(recorder: Recorder) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            browser.new_page().goto(recorder.url + "/chromium")
        finally:
            browser.close()
    _same(HEADLESS, recorder.heads["/chromium"], site="none")
    referer = recorder.url + "/chromium"
    for path, dest in (("/chromium.css", "style"), ("/chromium.png", "image")):
        simulated = HEADLESS.asset("h", dest, referer)
        assert _names(simulated) == _names(recorder.heads[path]), dest
        assert dict(simulated)["accept"] == dict(recorder.heads[path])["accept"], dest


def test_firefox(recorder: Recorder, tmp_path: Path) -> None:
    """Debian's Firefox ESR loads the page headless (a screenshot run: a navigation typed in,
    so no Sec-Fetch-User, which a click adds)."""
    firefox = shutil.which("firefox-esr") or shutil.which("firefox")
    assert firefox, "firefox-esr missing (make system-deps)"
    env = {**os.environ, "HOME": str(tmp_path), "MOZ_HEADLESS": "1"}
    subprocess.run([firefox, "--headless", "--no-remote", "--profile", str(tmp_path), "--screenshot",
                    str(tmp_path / "shot.png"), recorder.url + "/firefox"],
                   env=env, capture_output=True, timeout=120, check=False)
    sent = [(n, v) for n, v in recorder.heads["/firefox"] if n != "sec-fetch-user"]
    simulated = [(n, v) for n, v in FIREFOX_LINUX.page("h", site="none") if n != "sec-fetch-user"]
    assert _names(simulated) == _names(sent)
    assert dict(sent)["accept-language"] == dict(simulated)["accept-language"]
    assert dict(sent)["accept"] == dict(simulated)["accept"]
    for path, dest in (("/firefox.css", "style"), ("/firefox.png", "image")):
        asset = FIREFOX_LINUX.asset("h", dest, recorder.url + "/firefox")
        assert [n for n, _ in asset] == [n for n, _ in recorder.heads[path]], dest
        for name in ("accept", "priority", "sec-fetch-mode"):
            assert dict(asset)[name] == dict(recorder.heads[path])[name], (dest, name)
