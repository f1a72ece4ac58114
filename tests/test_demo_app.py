"""The demo social network: population, routes per the contract, and bad input."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapeshield.demo import (
    HONEYPOT_USER_ID,
    HONEYPOT_USERNAME,
    DemoUser,
    Population,
    create_demo_app,
    export_dataset,
)
from scrapeshield.demo.app import MAX_LOGIN_BODY, PAGE_SIZE, encode_cursor

with warnings.catch_warnings():  # starlette prefers httpx2; plain httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

USER_KEYS = {"id", "username", "name", "bio", "city", "country", "phone", "email", "photo",
             "created_at", "followers_count"}
SUMMARY_KEYS = {"id", "username", "name", "photo"}
EXPORT_KEYS = ["id", "username", "name", "bio", "city", "country", "phone", "email", "photo",
               "created_at", "password"]


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(2000, seed=7)


@pytest.fixture(scope="module")
def big() -> Population:
    return Population.generate(10_000, seed=1)


@pytest.fixture
def client(population: Population) -> Iterator[TestClient]:
    with TestClient(create_demo_app(population)) as c:
        yield c


@pytest.fixture(scope="module")
def shared_client(population: Population) -> Iterator[TestClient]:
    with TestClient(create_demo_app(population)) as c:
        yield c


def busiest(population: Population) -> DemoUser:
    """A user with more than two pages of followers."""
    for user in population:
        if population.followers_count(user.id) > 2 * PAGE_SIZE + 3:
            return user
    raise AssertionError("no user with many followers")


# --- population -------------------------------------------------------------------------


def test_same_seed_same_population() -> None:
    a, b = Population.generate(500, seed=3), Population.generate(500, seed=3)
    assert list(a) == list(b)
    assert [a.followers_of(i) for i in range(1, 50)] == [b.followers_of(i) for i in range(1, 50)]
    assert [a.posts_of(i) for i in range(1, 50)] == [b.posts_of(i) for i in range(1, 50)]


def test_different_seed_different_population() -> None:
    a, b = Population.generate(500, seed=3), Population.generate(500, seed=4)
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 490
    assert a.followers_of(10) != b.followers_of(10) or a.posts_of(10) != b.posts_of(10)


def test_personal_fields_unique_over_10k(big: Population) -> None:
    assert len(big) == 10_000
    for field in ("username", "phone", "email", "password"):
        assert len({getattr(u, field) for u in big}) == 10_000, field
    assert [u.id for u in big] == list(range(1, 10_001))


def test_fields_are_plausible(big: Population) -> None:
    countries = {u.country for u in big}
    assert {"GB", "CA", "AU", "HK", "US", "DE", "FR", "IE", "NZ", "SG", "IN", "JP"} <= countries
    for user in big:
        assert re.fullmatch(r"[a-z0-9._]{3,40}", user.username), user.username
        assert re.fullmatch(r"\+\d{1,3}( ?[\d-]+)+", user.phone), user.phone
        assert re.fullmatch(r"[a-z0-9._]+@[a-z.]+\.[a-z]+", user.email), user.email
        assert user.photo == f"/static/avatars/{user.id}.svg"
        assert re.fullmatch(r"20[12]\d-\d\d-\d\d", user.created_at)
        assert user.name and user.bio and user.city and user.password
    gb = next(u for u in big if u.country == "GB")
    assert gb.phone.startswith("+44 7")


def test_lookups_and_search(population: Population) -> None:
    user = population.by_id(42)
    assert user is not None and population.by_username(user.username) == user
    assert population.by_id(0) is None and population.by_id(len(population) + 1) is None
    assert population.by_username(HONEYPOT_USERNAME) is None
    part = user.name.split()[1][:4].upper()
    found = population.search(part, limit=len(population))
    assert user in found
    assert all(part.casefold() in (u.username + u.name.casefold()) for u in found)
    assert population.search(part, limit=3) == found[:3]
    assert population.search(part, limit=5, after=found[2].id) == found[3:8]


def test_followers_shape(population: Population) -> None:
    sizes = [population.followers_count(i) for i in range(1, len(population) + 1)]
    assert min(sizes) == 0 and 150 < max(sizes) <= 300
    for uid in range(1, 200):
        followers = population.followers_of(uid)
        assert len(followers) == sizes[uid - 1] == len(set(followers))
        assert uid not in followers
        assert all(1 <= f <= len(population) for f in followers)
    assert population.followers_of(len(population) + 5) == []


def test_generation_is_fast() -> None:
    import timeit

    assert timeit.timeit(lambda: Population.generate(10_000, seed=2), number=1) < 1.0


def test_export_round_trip(population: Population, tmp_path: Path) -> None:
    path = tmp_path / "users.jsonl"
    assert export_dataset(population, path) == len(population)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(population)
    records = [json.loads(line) for line in lines]
    assert all(list(r) == EXPORT_KEYS for r in records)
    assert [DemoUser(**r) for r in records] == list(population)
    assert HONEYPOT_USERNAME not in path.read_text(encoding="utf-8")


# --- routes -----------------------------------------------------------------------------


def test_home_feed(shared_client: TestClient, population: Population) -> None:
    r = shared_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    links = re.findall(r'class="author" href="/u/([^"]+)"', r.text)
    assert 15 <= len(links) <= 25
    assert all(population.by_username(name) is not None for name in links)
    assert '<link rel="stylesheet" href="/static/app.css">' in r.text
    assert '<script src="/static/app.js"' in r.text
    assert re.search(r'<img class="avatar" src="/static/avatars/\d+\.svg"', r.text)
    assert 'action="/search"' in r.text and 'href="/login"' in r.text
    assert shared_client.get("/").text == r.text


def test_honeypot_link_present_but_hidden(shared_client: TestClient) -> None:
    html = shared_client.get("/").text
    found = re.search(r'<div class="([\w-]+)" aria-hidden="true">(<a [^>]*>)', html)
    assert found, "hidden trap link missing"
    link = found.group(2)
    assert f'href="/u/{HONEYPOT_USERNAME}"' in link
    assert 'rel="nofollow"' in link and 'tabindex="-1"' in link
    css = shared_client.get("/static/app.css").text
    assert re.search(rf"\.{found.group(1)}\s*{{[^}}]*display:\s*none", css)


def test_honeypot_profile_looks_real(shared_client: TestClient) -> None:
    page = shared_client.get(f"/u/{HONEYPOT_USERNAME}")
    assert page.status_code == 200 and 'class="phone"' in page.text
    data = shared_client.get(f"/api/v1/users/{HONEYPOT_USER_ID}").json()
    assert set(data) == USER_KEYS and data["username"] == HONEYPOT_USERNAME
    assert shared_client.get(data["photo"]).status_code == 200


def test_profile_page(shared_client: TestClient, population: Population) -> None:
    user = population.by_id(17)
    assert user is not None
    r = shared_client.get(f"/u/{user.username}")
    assert r.status_code == 200
    text = r.text
    for value in (user.phone, user.email, user.city, user.country):
        assert value in text
    assert f'src="{user.photo}"' in text
    assert f'href="/u/{user.username}/followers"' in text
    from html import escape

    assert escape(user.name) in text and escape(user.bio, quote=True) in text
    assert all(escape(p, quote=True) in text for p in population.posts_of(user.id))
    missing = shared_client.get("/u/nobody.here.at.all")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_api_user(shared_client: TestClient, population: Population) -> None:
    user = population.by_id(5)
    assert user is not None
    data = shared_client.get("/api/v1/users/5").json()
    assert set(data) == USER_KEYS
    expected = user.to_record()
    del expected["password"]
    assert {k: data[k] for k in expected} == expected
    assert data["followers_count"] == len(population.followers_of(5))
    r = shared_client.get(f"/api/v1/users/{len(population) + 1}")
    assert r.status_code == 404 and r.json() == {"error": "not found"}


def test_followers_pagination_walks_all(shared_client: TestClient,
                                        population: Population) -> None:
    user = busiest(population)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        body = shared_client.get(f"/api/v1/users/{user.id}/followers", params=params).json()
        assert set(body) == {"followers", "next_cursor"}
        assert all(set(f) == SUMMARY_KEYS for f in body["followers"])
        assert len(body["followers"]) <= PAGE_SIZE
        seen.extend(f["id"] for f in body["followers"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and str(len(seen)) not in cursor
    assert seen == population.followers_of(user.id)
    assert pages == -(-len(seen) // PAGE_SIZE)
    html = shared_client.get(f"/u/{user.username}/followers")
    assert html.status_code == 200 and 'rel="next"' in html.text


def test_followers_bad_cursors(shared_client: TestClient, population: Population) -> None:
    user = busiest(population)
    url = f"/api/v1/users/{user.id}/followers"
    other = encode_cursor("f", user.id + 1, PAGE_SIZE)
    beyond = encode_cursor("f", user.id, 10_000)
    for cursor in ("zz", "!!!", "x" * 500, other, beyond, encode_cursor("s", user.id, 20)):
        r = shared_client.get(url, params={"cursor": cursor})
        assert r.status_code == 400, cursor
        assert "error" in r.json()
    assert shared_client.get("/api/v1/users/999999/followers").status_code == 404


def test_search_api(shared_client: TestClient, population: Population) -> None:
    body = shared_client.get("/api/v1/search", params={"q": "an"}).json()
    assert set(body) == {"results", "next_cursor"}
    assert len(body["results"]) == PAGE_SIZE and body["next_cursor"]
    assert all(set(u) == SUMMARY_KEYS for u in body["results"])
    walked = [u["id"] for u in body["results"]]
    nxt = shared_client.get("/api/v1/search", params={"q": "an", "cursor": body["next_cursor"]})
    walked += [u["id"] for u in nxt.json()["results"]]
    assert walked == [u.id for u in population.search("an", limit=2 * PAGE_SIZE)]
    other_q = shared_client.get("/api/v1/search", params={"q": "ma",
                                                          "cursor": body["next_cursor"]})
    assert other_q.status_code == 400
    for q in ("", "a", " b ", "x" * 101):
        r = shared_client.get("/api/v1/search", params={"q": q})
        assert r.status_code == 400 and "error" in r.json()
    empty = shared_client.get("/api/v1/search", params={"q": "zzzzqqq"}).json()
    assert empty == {"results": [], "next_cursor": None}


def test_search_page(shared_client: TestClient, population: Population) -> None:
    user = population.by_id(3)
    assert user is not None
    r = shared_client.get("/search", params={"q": user.username})
    assert r.status_code == 200 and f'href="/u/{user.username}"' in r.text
    assert shared_client.get("/search").status_code == 200
    assert shared_client.get("/search", params={"q": "a"}).status_code == 400


def test_robots_txt(shared_client: TestClient) -> None:
    r = shared_client.get("/robots.txt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert lines[0] == "User-agent: *"
    for path in ("/api/", "/search", "/login", f"/u/{HONEYPOT_USERNAME}"):
        assert f"Disallow: {path}" in lines
    assert "Disallow: /" not in lines and "Allow: /" in lines


def test_static_and_avatars(shared_client: TestClient, population: Population) -> None:
    assert shared_client.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert "javascript" in shared_client.get("/static/app.js").headers["content-type"]
    user = population.by_id(9)
    assert user is not None
    svg = shared_client.get(user.photo)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    initials = "".join(p[0] for p in user.name.split()[:2]).upper()
    assert svg.text.startswith("<svg") and f">{initials}</text>" in svg.text
    assert shared_client.get(user.photo).text == svg.text
    assert shared_client.get("/static/avatars/999999.svg").status_code == 404
    assert shared_client.get("/static/avatars/x.svg").status_code == 404
    assert shared_client.get("/static/../app.py").status_code == 404
    assert shared_client.get("/healthz").text == "ok"


# --- sign-in ----------------------------------------------------------------------------


def test_login_form_and_logout(client: TestClient, population: Population) -> None:
    user = population.by_id(11)
    assert user is not None
    form = client.get("/login")
    assert form.status_code == 200 and 'name="username"' in form.text
    r = client.post("/login", data={"username": user.username, "password": user.password},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert re.match(rf"sid={user.id}\.[A-Za-z0-9_-]{{20,}};", cookie)
    assert "HttpOnly" in cookie and "Path=/" in cookie and "samesite=lax" in cookie.lower()
    assert f"Signed in as <a href=\"/u/{user.username}\">@{user.username}" in client.get("/").text
    assert "Signed in as" in client.get(f"/u/{user.username}").text
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and 'sid=""' in out.headers["set-cookie"]
    assert "Signed in as" not in client.get("/").text


def test_login_json(client: TestClient, population: Population) -> None:
    user = population.by_id(12)
    assert user is not None
    r = client.post("/login", json={"username": user.username, "password": user.password})
    assert r.status_code == 200 and r.json() == {"ok": True, "id": user.id}
    sid = client.cookies["sid"]
    assert sid.startswith(f"{user.id}.")
    assert "Signed in as" in client.get("/").text
    client.cookies.clear()
    assert "Signed in as" not in client.get("/").text
    client.cookies.set("sid", sid)
    out = client.post("/logout", headers={"accept": "application/json"})
    assert out.json() == {"ok": True}
    client.cookies.set("sid", sid)
    assert "Signed in as" not in client.get("/").text


def test_wrong_credentials(client: TestClient, population: Population) -> None:
    user = population.by_id(13)
    assert user is not None
    r = client.post("/login", json={"username": user.username, "password": user.password + "x"})
    assert r.status_code == 401 and r.json() == {"error": "invalid credentials"}
    r = client.post("/login", data={"username": "no.such.user", "password": "pw"})
    assert r.status_code == 401 and "Wrong username or password" in r.text
    r = client.post("/login", json={"username": HONEYPOT_USERNAME, "password": "x"})
    assert r.status_code == 401
    assert "sid" not in client.cookies


def test_forged_session_is_signed_out(client: TestClient, population: Population) -> None:
    user = population.by_id(14)
    assert user is not None
    client.post("/login", json={"username": user.username, "password": user.password})
    token = client.cookies["sid"].split(".", 1)[1]
    assert "Signed in as" in client.get("/").text
    for forged in (f"15.{token}", f"{user.id}.{token[:-1]}", "1.forged", "1", "", "x" * 5000):
        client.cookies.set("sid", forged)
        r = client.get("/")
        assert r.status_code == 200 and "Signed in as" not in r.text


def test_oversized_body_without_length_is_413(shared_client: TestClient) -> None:
    chunks = iter([b"username=" + b"a" * 10_000, b"b" * 10_000])
    r = shared_client.post("/login", content=chunks,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("get", "/api/v1/users/abc", {}, 404),
    ("get", "/api/v1/users/-1", {}, 404),
    ("get", "/api/v1/users/" + "9" * 400, {}, 404),
    ("get", "/api/v1/users/1/followers?cursor=%00%ff", {}, 400),
    ("get", "/api/v1/search?q=" + "a" * 60_000, {}, 400),
    ("get", "/u/" + "x" * 5000, {}, 404),
    ("post", "/api/v1/users/1", {}, 405),
    ("put", "/login", {}, 405),
    ("post", "/login", {"content": b"x" * (MAX_LOGIN_BODY + 1)}, 413),
    ("post", "/login", {"content": b"[" * MAX_LOGIN_BODY,
                        "headers": {"content-type": "application/json"}}, 400),
    ("post", "/login", {"content": b"{bad json", "headers": {"content-type": "application/json"}},
     400),
    ("post", "/login", {"json": ["username", "password"]}, 400),
    ("post", "/login", {"json": {"username": 1, "password": None}}, 400),
    ("post", "/login", {"data": {"username": "a"}}, 400),
    ("post", "/login", {"content": b"\xff\xfe=\x00", "headers": {
        "content-type": "application/x-www-form-urlencoded"}}, 400),
    ("post", "/login", {"content": b"a", "headers": {"content-type": "text/plain"}}, 415),
    ("post", "/login", {"content": b"a", "headers": {"content-length": "abc"}}, 400),
])
def test_bad_input_is_4xx(shared_client: TestClient, method: str, path: str,
                          kwargs: dict[str, object], status: int) -> None:
    r = shared_client.request(method.upper(), path, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status, r.text[:200]
    if path.startswith("/api/"):
        assert "error" in r.json()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(q=st.text(max_size=300), cursor=st.text(max_size=100))
def test_fuzzed_queries_never_500(q: str, cursor: str) -> None:
    client = _fuzz_client()
    for path in ("/api/v1/search", "/search", "/api/v1/users/3/followers", "/u/x/followers"):
        r = client.get(path, params={"q": q, "cursor": cursor})
        assert 200 <= r.status_code < 500, (path, q, cursor, r.status_code)


_FUZZ: list[TestClient] = []


def _fuzz_client() -> TestClient:
    if not _FUZZ:
        _FUZZ.append(TestClient(create_demo_app(Population.generate(300, seed=5))))
    return _FUZZ[0]
