"""The WSGI middleware in-process: it never raises into the host app, and each action's response."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from wsgi_apps.faults import FailingContexts, FailingObserve, FailingStore
from wsgi_apps.harness import solve

from scrapeshield.clock import monotonic
from scrapeshield.contrib.flask import protect
from scrapeshield.hosts.wsgi import MAX_NAMES, ScrapeshieldWSGI, environ_headers, environ_path
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings

BROWSER = {
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "HTTP_ACCEPT_LANGUAGE": "en",
    "HTTP_ACCEPT_ENCODING": "gzip",
    "HTTP_ACCEPT": "text/html",
}
NO_CURL = "rules:\n  - {name: no-curl, match: {ua_regex: '^curl/'}, action: block}\n"
HTTPX = {"HTTP_USER_AGENT": "python-httpx/0.28.1", "HTTP_ACCEPT": "*/*"}
# Headless Chromium as it comes: challenged for its user-agent, which its pass answers (a pass
# answers whether a browser runs the page; a declared HTTP library's pass does not make it one).
HEADLESS = {
    "HTTP_SEC_CH_UA": '"Chromium";v="126", "Not-A.Brand";v="8"', "HTTP_SEC_CH_UA_MOBILE": "?0",
    "HTTP_SEC_CH_UA_PLATFORM": '"Linux"', "HTTP_UPGRADE_INSECURE_REQUESTS": "1",
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/126.0.0.0 Safari/537.36",
    "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "HTTP_SEC_FETCH_SITE": "none", "HTTP_SEC_FETCH_MODE": "navigate", "HTTP_SEC_FETCH_DEST": "document",
    "HTTP_ACCEPT_ENCODING": "gzip, deflate, br", "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
}


class Boom(Exception):
    pass


class Body:
    """The app's response iterable: the middleware must hand this very object to the server."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/broken":
        raise Boom("the app's own bug")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body([b"hello from the app"])


class Result:
    def __init__(self, body: Iterable[bytes], status: str, headers: list[tuple[str, str]]) -> None:
        self.iterable = body
        self.status = int(status.split()[0])
        self.status_line = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = b"".join(body)

    @property
    def action(self) -> str | None:
        return self.headers.get("x-scrapeshield-action")


def make(tmp_path: Path, policy: str = "") -> tuple[ScrapeshieldWSGI, Shield]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), policy_path=str(path)))
    return ScrapeshieldWSGI(app, shield), shield


def environ(path: str = "/", headers: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    path, _, query = path.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    env.update(BROWSER if headers is None else headers)
    env.update(extra)
    return env


def call(middleware: Any, env: dict[str, Any]) -> Result:
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))
        return lambda data: None

    body = middleware(env, start_response)
    assert len(seen) == 1
    return Result(body, *seen[0])


def post(path: str, body: bytes, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO(body),
                              "CONTENT_LENGTH": str(len(body)),
                              "CONTENT_TYPE": "application/x-www-form-urlencoded"}
    fields.update(extra)
    return environ(path, **fields)


def test_allowed_request_untouched(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path)
    result = call(middleware, environ())
    assert result.status == 200 and result.body == b"hello from the app"
    assert result.action is None
    assert isinstance(result.iterable, Body)  # the app's own iterable, so its close() is the server's


def test_debug_headers_tag_allowed_responses(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path, "debug_headers: true\n")
    result = call(middleware, environ())
    assert result.action == "allow" and "x-scrapeshield-score" in result.headers
    assert result.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("where", ["host", "engine"])
@pytest.mark.parametrize("mode", ["open", "closed"])
def test_shield_failure_never_reaches_the_host(
    tmp_path: Path, mode: str, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    middleware, shield = make(tmp_path, f"fail_mode: {mode}\n")

    if where == "host":
        monkeypatch.setattr(shield, "engine", FailingContexts(shield.engine))
    else:
        monkeypatch.setattr(shield.engine, "store", FailingStore(shield.store))
    result = call(middleware, environ())
    if mode == "open":
        assert result.status == 200 and result.body == b"hello from the app"
    elif where == "host":
        assert result.status == 503 and result.action == "block"
    else:  # the engine's own fail mode: a block decision, refused as such
        assert result.status == 403 and result.action == "block"


def test_failure_building_a_reply_still_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    middleware, shield = make(tmp_path)

    def explode(*args: object) -> bytes:
        raise RuntimeError("page bug")

    monkeypatch.setattr(shield.challenge, "page", explode)
    result = call(middleware, environ("/u/someone", HTTPX))
    assert result.status == 403 and result.action == "block"


def test_app_exceptions_stay_the_apps(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path)
    with pytest.raises(Boom):
        call(middleware, environ("/broken"))


def test_block_and_throttle_responses(tmp_path: Path) -> None:
    middleware, _ = make(
        tmp_path,
        NO_CURL + "limits:\n"
        "  - {name: tiny, key: ip, window: 60, limit: 2}\n",
    )
    blocked = call(middleware, environ(headers={"HTTP_USER_AGENT": "curl/8.5.0"}))
    assert blocked.status_line == "403 Forbidden" and blocked.action == "block"
    assert blocked.headers["content-length"] == str(len(blocked.body))
    call(middleware, environ())
    throttled = call(middleware, environ())
    assert throttled.status_line == "429 Too Many Requests" and throttled.action == "throttle"
    assert int(throttled.headers["retry-after"]) >= 1


def test_json_clients_get_json_refusals(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path, NO_CURL)
    curl = {"HTTP_USER_AGENT": "curl/8.5.0", "HTTP_ACCEPT": "application/json"}
    refused = call(middleware, environ(headers=curl))
    assert refused.headers["content-type"] == "application/json" and b'"action": "block"' in refused.body


def test_tarpit_answers_slowly(tmp_path: Path) -> None:
    middleware, _ = make(
        tmp_path,
        "tarpit: {delay: 0.3}\nrules:\n  - {name: slow, match: {ua_regex: '^slowpoke'}, action: tarpit}\n",
    )
    started = monotonic()
    result = call(middleware, environ(headers={"HTTP_USER_AGENT": "slowpoke/1"}))
    assert monotonic() - started >= 0.3
    assert result.status == 429 and result.action == "tarpit"


def test_challenge_page_returns_to_the_full_url(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path)
    result = call(middleware, environ("/u/someone?tab=posts", HTTPX))
    assert result.status == 403 and result.action == "challenge"
    assert b"/u/someone?tab=posts" in result.body


def test_solved_challenge_sets_a_pass_that_lets_the_client_through(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path)
    page = call(middleware, environ("/u/someone?tab=posts", HEADLESS))
    assert page.action == "challenge"
    form = solve(page.body.decode())
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    verified = call(middleware, post("/.scrapeshield/verify", body, **HEADLESS))
    assert verified.status == 303 and verified.headers["location"] == "/u/someone?tab=posts"
    cookie = verified.headers["set-cookie"].split(";")[0]
    assert "Secure" not in verified.headers["set-cookie"]
    again = call(middleware, environ("/u/someone?tab=posts", {**HEADLESS, "HTTP_COOKIE": cookie}))
    assert again.status == 200 and again.body == b"hello from the app"
    replayed = call(middleware, post("/.scrapeshield/verify", body, **HEADLESS))
    assert replayed.status == 403 and b"replayed" in replayed.body


def test_pass_cookie_is_secure_over_https(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path)
    page = call(middleware, environ("/u/someone", HTTPX))
    body = "&".join(f"{k}={v}" for k, v in solve(page.body.decode()).items()).encode()
    verified = call(middleware, post("/.scrapeshield/verify", body, **HTTPX, **{"wsgi.url_scheme": "https"}))
    assert verified.status == 303 and verified.headers["set-cookie"].endswith("; Secure")


class Exploding(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise ConnectionResetError("client went away")


class Dribble(io.RawIOBase):
    """A stream that hands out one byte per read, as a slow network might."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        chunk, self.data = self.data[:1], self.data[1:]
        return chunk


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"REQUEST_METHOD": "GET"}, 405),
        ({}, 403),  # a well-formed form with garbage in it
        ({"wsgi.input": io.BytesIO(b"z" * 10_000), "CONTENT_LENGTH": "10000"}, 413),
        ({"wsgi.input": io.BytesIO(bytes(range(256)) * 4), "CONTENT_LENGTH": "1024"}, 403),
        ({"CONTENT_LENGTH": "99999999999999999999999999"}, 413),
        ({"CONTENT_LENGTH": "9" * 5000}, 413),  # past int()'s digit limit
        ({"CONTENT_LENGTH": "-5"}, 400),
        ({"CONTENT_LENGTH": "abc"}, 400),
        ({"CONTENT_LENGTH": "１２"}, 400),  # digits, but not ASCII ones
        ({"CONTENT_LENGTH": 12}, 400),  # not a string at all
        ({"CONTENT_LENGTH": "100"}, 403),  # claims more than is sent: what came is read
        ({"CONTENT_LENGTH": ""}, 403),  # no length and no terminated input: no body
        ({"wsgi.input": Exploding()}, 400),
        ({"wsgi.input": None}, 400),
        ({"wsgi.input": Dribble(b"token=x&solution=y")}, 403),
        ({"CONTENT_LENGTH": "", "wsgi.input_terminated": True, "wsgi.input": io.BytesIO(b"x" * 9000)}, 413),
        ({"CONTENT_LENGTH": "", "wsgi.input_terminated": True}, 403),
        ({"wsgi.input": io.BytesIO(b"&".join([b"a=1"] * 9)), "CONTENT_LENGTH": "35"}, 400),
    ],
)
def test_verify_endpoint_refuses_bad_input(tmp_path: Path, extra: dict[str, Any], status: int) -> None:
    middleware, _ = make(tmp_path)
    result = call(middleware, post("/.scrapeshield/verify", b"token=x&solution=y", **extra))
    assert result.status == status, result.body
    assert result.headers["content-length"] == str(len(result.body))


@pytest.mark.parametrize(
    "extra",
    [
        {"REMOTE_ADDR": None},
        {"REMOTE_ADDR": "not an address"},
        {"REMOTE_ADDR": "::ffff:192.0.2.9"},
        {"REQUEST_METHOD": None},
        {"REQUEST_METHOD": "\x00" * 100},
        {"PATH_INFO": b"/u/bytes"},
        {"PATH_INFO": "/u/\u2603\ud800"},  # not latin-1, a lone surrogate: not what PEP 3333 allows
        {"PATH_INFO": "/u/" + "a" * 100_000},
        {"QUERY_STRING": None},
        {"HTTP_USER_AGENT": None},
        {"HTTP_COOKIE": b"__scrapeshield_pass=x"},
        {"HTTP_X_FORWARDED_FOR": "\xff" * 5000},
        {"wsgi.url_scheme": 443},
        {"SCRIPT_NAME": None},
    ],
)
def test_malformed_environ_values_never_raise(
    tmp_path: Path, extra: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    middleware, shield = make(tmp_path)
    env = environ("/u/someone")
    env.update(extra)
    env[7] = "a key that is not a string"  # type: ignore[index]
    result = call(middleware, env)
    assert result.status in (200, 403, 429)
    # Decided on what could be read, not by the fail mode.
    assert shield.engine.errors == 0 and not [r for r in caplog.records if r.levelname == "ERROR"]


def test_environ_headers_back_to_names_in_environ_order() -> None:
    env = {
        "REQUEST_METHOD": "GET", "HTTP_HOST": "example.org", "HTTP_USER_AGENT": "ua",
        "CONTENT_TYPE": "text/plain", "HTTP_SEC_CH_UA": '"Chromium"', "CONTENT_LENGTH": "",
        "HTTP_ACCEPT_LANGUAGE": "en", "wsgi.input": None,
    }
    assert environ_headers(env) == [
        ("host", "example.org"), ("user-agent", "ua"), ("content-type", "text/plain"),
        ("sec-ch-ua", '"Chromium"'), ("accept-language", "en"),
    ]


def test_environ_headers_same_once_every_key_is_known() -> None:
    """The second request of a server takes the all-keys-cached path: the same pairs."""
    env: dict[Any, Any] = {
        "HTTP_HOST": "h", "CONTENT_TYPE": "", "HTTP_X_EMPTY": "", "CONTENT_LENGTH": "3",
        "HTTP_X_NUMBER": 7, "REMOTE_ADDR": "10.0.0.1", "HTTP_ACCEPT": "*/*",
    }
    expected = [("host", "h"), ("x-empty", ""), ("content-length", "3"), ("accept", "*/*")]
    names: dict[str, str] = {}
    assert environ_headers(env, names) == expected
    assert environ_headers(env, names) == expected  # every key cached now
    env[7] = "a key that is not a string"
    assert environ_headers(env, names) == expected
    assert environ_headers({**env, "HTTP_X_NEW": "n"}, names) == [*expected, ("x-new", "n")]


GUNICORN_ORDER = {  # the keys gunicorn inserts, in its order, around the client's headers
    "wsgi.input_terminated": True, "SERVER_SOFTWARE": "gunicorn", "REQUEST_METHOD": "GET",
    "QUERY_STRING": "", "RAW_URI": "/", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example.org",
    "HTTP_X_FORWARDED_FOR": "203.0.113.9", **HEADLESS, "HTTP_COOKIE": "sid=12.ab; x=1",
    "REMOTE_ADDR": "127.0.0.1", "PATH_INFO": "/u/someone", "SCRIPT_NAME": "",
}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"CONTENT_TYPE": "", "CONTENT_LENGTH": ""},  # CGI blanks: the long way, dropped
        {"HTTP_X_EMPTY": ""},  # an empty header is kept, the long way
        {"HTTP_X_NUMBER": 7, 9: "a key that is not a string"},
        {"HTTP_X_LONG": "v" * 5000, "HTTP_X_LATIN": "caf\xe9 \udcff"},
        {f"HTTP_X_{i}": str(i) for i in range(200)},  # more than MAX_HEADERS
        {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3", "HTTP_AUTHORIZATION": "t"},
    ],
)
def test_one_pass_context_same_as_the_long_way(tmp_path: Path, extra: dict[Any, Any]) -> None:
    """from_environ builds what build(environ_headers(...)) builds, or hands back None."""
    _, shield = make(tmp_path, "trusted_proxies: [127.0.0.1/32]\nidentity: {session_cookie: sid}\n")
    builder = shield.engine.contexts
    env: dict[Any, Any] = {**GUNICORN_ORDER, **extra}
    names: dict[object, str] = {}
    args = (1000.0, "127.0.0.1", "GET", "/u/someone")
    assert builder.from_environ(*args, env.items(), names) is None  # no key named yet
    long_way = builder.build(*args, environ_headers(env, names))
    one_pass = builder.from_environ(*args, env.items(), names)
    blank = any(type(v) is not str or not v for k, v in env.items() if str(k).startswith("HTTP_")
                or k in ("CONTENT_TYPE", "CONTENT_LENGTH"))
    if blank:
        assert one_pass is None
    else:
        assert one_pass == long_way and one_pass is not None
        assert one_pass.headers[0] == ("host", "example.org")  # the environ's order
        assert one_pass.ip == "203.0.113.9" and one_pass.session
    # Named keys stay named: the next request with the same keys takes the same path.
    assert builder.from_environ(*args, env.items(), names) == one_pass


def test_gate_answers_the_same_either_way(tmp_path: Path) -> None:
    """The middleware decides alike on a request whose keys were named and one whose were not."""
    middleware, shield = make(tmp_path, "debug_headers: true\n")
    env = {**environ("/u/someone"), "CONTENT_TYPE": ""}
    first = call(middleware, dict(env))  # names the keys; CGI blank: the long way
    again = call(middleware, {k: v for k, v in env.items() if k != "CONTENT_TYPE"})  # one pass
    assert first.status == again.status == 200
    assert first.headers["x-scrapeshield-action"] == again.headers["x-scrapeshield-action"] == "allow"


@pytest.mark.parametrize(
    ("status", "counted"),
    [("404 Not Found", 1), ("410 Gone", 1), ("200 OK", 0), ("4x4 odd", 0), ("3:4 odd", 0),
     ("40", 0), ("", 0), ("\u0664\u0660\u0664 Arabic-Indic digits", 0)],
)
def test_observed_statuses(tmp_path: Path, status: str, counted: int) -> None:
    """The app's status is read digit by digit; a line that does not start with three ASCII
    digits is passed on untouched and not counted."""
    _, shield = make(tmp_path)

    def answer(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response(status, [("content-type", "text/plain")])
        return [b"x"]

    seen: list[str] = []
    middleware = ScrapeshieldWSGI(answer, shield)
    body = middleware(environ("/u/someone"), lambda s, h, e=None: seen.append(s))
    assert list(body) == [b"x"] and seen == [status]
    assert sum(shield.engine._misses.values()) == counted


def test_failing_observe_never_reaches_the_app(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, shield = make(tmp_path)
    shield.engine = FailingObserve(shield.engine)  # type: ignore[assignment]

    def answer(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("404 Not Found", [("content-type", "text/plain")])
        return [b"gone"]

    result = call(ScrapeshieldWSGI(answer, shield), environ())
    assert result.status == 404 and result.body == b"gone"
    assert "reporting the answer's status failed" in caplog.text


def test_environ_path_as_asgi_sees_it() -> None:
    # PEP 3333: the UTF-8 bytes of /u/jürgen, each byte as one latin-1 character.
    assert environ_path({"PATH_INFO": "/u/jÃ¼rgen"}) == "/u/jürgen"
    assert environ_path({"SCRIPT_NAME": "/app", "PATH_INFO": "/u/x"}) == "/app/u/x"
    assert environ_path({"PATH_INFO": "/u/\xff"}) == "/u/\ufffd"
    assert environ_path({}) == "/"


def test_limits_hold_exactly_under_a_threaded_server(tmp_path: Path) -> None:
    middleware, _ = make(tmp_path, "limits:\n  - {name: budget, key: ip, window: 3600, limit: 500}\n")
    statuses: list[int] = []
    lock = threading.Lock()
    threaded: dict[str, Any] = {"wsgi.multithread": True}

    def client() -> None:
        for _ in range(200):
            status = call(middleware, environ(**threaded)).status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(8)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that an unguarded update would race
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    assert statuses.count(200) == 500 and statuses.count(429) == 1100


def test_flask_protect(tmp_path: Path) -> None:
    flask_app = Flask(__name__)

    @flask_app.get("/")
    def home() -> str:
        return "flask home"

    shield = Shield(Settings.resolve(data_dir=str(tmp_path)))
    protect(flask_app, shield)
    assert flask_app.extensions["scrapeshield"] is shield
    client = flask_app.test_client()
    headers = {"User-Agent": BROWSER["HTTP_USER_AGENT"], "Accept": "text/html", "Accept-Language": "en"}
    assert client.get("/", headers=headers).text == "flask home"
    challenged = client.get("/u/x", headers={"User-Agent": "python-httpx/0.28.1"})
    assert challenged.status_code == 403 and challenged.headers["X-Scrapeshield-Action"] == "challenge"


def test_header_name_cache_is_bounded() -> None:
    names: dict[str, str] = {}
    for n in range(3):
        env = {f"HTTP_X_{n}_{i}": "v" for i in range(MAX_NAMES)}
        assert len(environ_headers(env, names)) == MAX_NAMES
    assert len(names) == MAX_NAMES and environ_headers({"HTTP_X_2_1": "v"}, names) == [("x-2-1", "v")]
