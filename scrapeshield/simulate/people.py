"""People who must not be hurt: browsing with think times and assets, power users and
moderators, crowds behind one NAT or office proxy, people who open a profile directly, the
platform's app, search engines.

Each session is a generator of requests that reacts like the real client: a browser
solves a challenge by itself and carries on with its pass; a throttled person waits
and retries once; a blocked person gives up the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

from scrapeshield.context import PASS_COOKIE
from scrapeshield.simulate.model import HOST, Actor, Outcome, Req, World
from scrapeshield.simulate.tools import Tool
from scrapeshield.types import Action

ORIGIN = f"https://{HOST}"
PASS_MAX_AGE = 3600.0  # the default policy's pass_ttl: the pass cookie's Max-Age
FEED = 20  # profiles on the home feed (the demo shows twenty)


@dataclass(slots=True)
class Browser:
    """One person's browser state within a session."""

    world: World
    tool: Tool
    ip: str
    session: str
    t: float
    sid: str = ""  # signed-in session cookie value
    pass_cookie: str = ""
    pass_since: float = 0.0  # when the pass cookie was set (it lasts PASS_MAX_AGE)
    cached: bool = False  # app.css / app.js already cached
    last_url: str = ""
    gave_up: bool = False
    came_from: str = ""  # another site's page the first request comes from (a search engine)

    def cookie(self) -> str:
        parts = []
        if self.sid:
            parts.append(f"sid={self.sid}")
        if self.pass_cookie:
            parts.append(f"{PASS_COOKIE}={self.pass_cookie}")
        return "; ".join(parts)

    def request(self, path: str, *, target: int = 0, method: str = "GET", asset: str = "",
                accept: str = "") -> Req:
        if asset:
            headers = self.tool.asset(HOST, asset, self.last_url or ORIGIN + "/", self.cookie())
        elif not self.last_url and self.came_from:
            headers = self.tool.page(HOST, referer=self.came_from, cookie=self.cookie(), site="cross-site",
                                     accept=accept)
        else:
            site = "same-origin" if self.last_url else "none"
            headers = self.tool.page(HOST, referer=self.last_url, cookie=self.cookie(), site=site,
                                     accept=accept)
        return Req(self.t, self.ip, path, headers, self.tool.ja4, method, target, self.session)


BROWSERS = ("chrome", "firefox", "safari")
AVATARS = "/static/avatars/"


def _assets(b: Browser, assets: tuple[tuple[str, str], ...]) -> Iterator[Req]:
    """A page's sub-resources, a moment apart."""
    for sub, dest in assets:
        b.t += b.world.rng.uniform(0.02, 0.3)
        yield b.request(sub, asset=dest)


def drive(b: Browser, path: str, target: int = 0, assets: tuple[tuple[str, str], ...] = (),
          *, solves: bool = True) -> Actor:
    """A page view (the document, then its sub-resources) that reacts to the decisions as a
    browser does; sets ``b.gave_up`` when refused."""
    outcome: Outcome = yield b.request(path, target=target)
    browser = solves and b.tool.kind in BROWSERS
    if outcome.held and browser:
        # The held page: its stylesheet and script load (the photo is held back too), and its
        # script finds the proof of work in the background, posts it and reloads the page.
        yield from _assets(b, tuple(a for a in assets if not a[0].startswith(AVATARS)))
        assets = tuple(a for a in assets if a[0].startswith(AVATARS))
        b.t += b.world.rng.uniform(0.3, 1.5)
        cookie = b.world.solve(b.ip, b.tool.user_agent, path)
        if cookie is None:
            b.gave_up = True
            return
        b.pass_cookie, b.pass_since, b.last_url = cookie, b.t, ORIGIN + path
        outcome = yield b.request(path, target=target)
    if outcome.action is Action.CHALLENGE and browser:
        b.t += b.world.rng.uniform(0.8, 3.0)  # the page's script finds the proof of work
        cookie = b.world.solve(b.ip, b.tool.user_agent, path)
        if cookie is None:
            b.gave_up = True
            return
        b.pass_cookie, b.pass_since = cookie, b.t
        outcome = yield b.request(path, target=target)
    if outcome.action is Action.THROTTLE:
        b.t += max(1.0, outcome.retry_after)
        outcome = yield b.request(path, target=target)
    if outcome.action in (Action.BLOCK, Action.THROTTLE, Action.CHALLENGE, Action.TARPIT):
        b.gave_up = True
        return
    yield from _assets(b, assets)
    b.last_url = ORIGIN + path


def page_assets(b: Browser, avatars: list[int]) -> tuple[tuple[str, str], ...]:
    subs: list[tuple[str, str]] = []
    if not b.cached:  # the first page: stylesheet, script and the browser's own favicon fetch
        subs += [("/static/app.css", "style"), ("/static/app.js", "script"), ("/favicon.ico", "image")]
        b.cached = True
    subs += [(f"/static/avatars/{uid}.svg", "image") for uid in avatars]
    return tuple(subs)


def browsing(world: World, tool: Tool, ip: str, session: str, start: float, profiles: int,
             sign_in: int = 0, think: float = 12.0) -> Actor:
    """A person: home feed, then profiles (popular ones and friends), with think times."""
    b = Browser(world, tool, ip, session, start)
    rng = world.rng
    pop = world.population
    feed = [rng.randrange(1, len(pop) + 1) for _ in range(FEED)]
    yield from drive(b, "/", assets=page_assets(b, feed[:8]))
    if b.gave_up:
        return
    if sign_in:
        user = pop.by_id(sign_in)
        b.t += world.think(8)
        outcome = yield Req(b.t, ip, "/login", tool.page(HOST, referer=ORIGIN + "/", cookie=b.cookie()),
                            tool.ja4, "POST", 0, session)
        if outcome.action is Action.ALLOW and user is not None:
            b.sid = f"{user.id}.{world.rng.getrandbits(64):016x}"
    for _ in range(profiles):
        b.t += world.think(think)
        roll = rng.random()
        if roll < 0.35:
            uid = rng.choice(feed)
        elif roll < 0.85:
            uid = world.popular_user()
        else:  # a search for someone they know, then their profile
            user = pop.by_id(rng.randrange(1, len(pop) + 1))
            if user is None:
                continue
            q = quote(user.name.split()[0].lower())
            yield from drive(b, f"/search?q={q}", assets=page_assets(b, []))
            if b.gave_up:
                return
            b.t += world.think(5)
            uid = user.id
        user = pop.by_id(uid)
        if user is None:
            continue
        yield from drive(b, f"/u/{user.username}", uid, page_assets(b, [uid]))
        if b.gave_up:
            return
        if rng.random() < 0.08:  # a look at who follows them
            b.t += world.think(6)
            yield from drive(b, f"/u/{user.username}/followers", assets=page_assets(b, []))
            if b.gave_up:
                return


def search_arrival(world: World, tool: Tool, ip: str, session: str, start: float, profiles: int) -> Actor:
    """A person who lands on a profile from a search engine's results (the profile read is
    the first thing the site sees of them, with the search engine as referer), then reads a
    few more profiles on the site."""
    b = Browser(world, tool, ip, session, start, came_from="https://www.google.com/")
    pop = world.population
    for n in range(profiles):
        if n:
            b.t += world.think(12)
        uid = world.popular_user() if n or world.rng.random() < 0.5 else world.rng.randrange(1, len(pop) + 1)
        user = pop.by_id(uid)
        if user is None:
            continue
        yield from drive(b, f"/u/{user.username}", uid, page_assets(b, [uid]))
        if b.gave_up:
            return


def direct_arrival(world: World, tool: Tool, ips: list[str], session: str, starts: list[float],
                   profiles: list[int], sid: str = "") -> Actor:
    """A person who opens a profile directly: a link tapped in a messaging or mail app (most
    strip the referer), a bookmark, a typed address. The first request is the profile with
    no Referer and Sec-Fetch-Site none; then the browser loads the page's assets and the
    person may go on through the site's links. One browser may come back later in the day
    (``starts``, one visit each, a session each): its cookies (a challenge pass until its
    Max-Age, a remembered sign-in) and its cache (the stylesheet and script) carry over; a
    phone may be on another address by then (``ips``, one per visit)."""
    b = Browser(world, tool, ips[0], f"{session}-0", starts[0], sid=sid)
    rng = world.rng
    pop = world.population
    for visit, (ip, start, reads) in enumerate(zip(ips, starts, profiles, strict=True)):
        b.ip, b.session, b.t, b.last_url, b.gave_up = ip, f"{session}-{visit}", max(b.t, start), "", False
        if b.pass_cookie and b.t - b.pass_since >= PASS_MAX_AGE:
            b.pass_cookie = ""  # the browser drops the cookie at its Max-Age
        uid = world.popular_user() if rng.random() < 0.6 else rng.randrange(1, len(pop) + 1)
        user = pop.by_id(uid)
        if user is None:
            continue
        yield from drive(b, f"/u/{user.username}", uid, page_assets(b, [uid]))
        shown = user  # the profile on screen
        feed: list[int] = []
        for _ in range(reads - 1):
            if b.gave_up:
                break
            b.t += world.think(12)
            roll = rng.random()
            if roll < 0.5:  # the site's name in the header: the home feed, then someone on it
                if not feed:
                    feed = [rng.randrange(1, len(pop) + 1) for _ in range(FEED)]
                    yield from drive(b, "/", assets=page_assets(b, feed[:8]))
                    if b.gave_up:
                        break
                    b.t += world.think(6)
                uid = rng.choice(feed)
            elif roll < 0.7:  # who follows them, then one of those
                yield from drive(b, f"/u/{shown.username}/followers", assets=page_assets(b, []))
                if b.gave_up:
                    break
                b.t += world.think(6)
                uid = rng.randrange(1, len(pop) + 1)
            else:  # the search box
                found = pop.by_id(rng.randrange(1, len(pop) + 1))
                if found is None:
                    continue
                yield from drive(b, f"/search?q={quote(found.name.split()[0].lower())}",
                                 assets=page_assets(b, []))
                if b.gave_up:
                    break
                b.t += world.think(5)
                uid = found.id
            nxt = pop.by_id(uid)
            if nxt is None:
                continue
            shown = nxt
            yield from drive(b, f"/u/{shown.username}", uid, page_assets(b, [uid]))


def app_session(world: World, tool: Tool, ip: str, session: str, start: float, profiles: int,
                user_id: int) -> Actor:
    """The platform's own app: JSON API with the user's bearer token, no assets, no cookies."""
    token = f"Bearer app.{user_id}.{world.rng.getrandbits(72):018x}"
    t = start
    pop = world.population

    def req(path: str, target: int = 0) -> Req:
        headers = tool.page(HOST)
        headers.insert(2, ("authorization", token))
        return Req(t, ip, path, headers, tool.ja4, "GET", target, session)

    outcome = yield req(f"/api/v1/users/{user_id}", user_id)
    for _ in range(profiles):
        t += world.think(9)
        uid = world.popular_user() if world.rng.random() < 0.7 else world.rng.randrange(1, len(pop) + 1)
        outcome = yield req(f"/api/v1/users/{uid}", uid)
        if outcome.action is Action.THROTTLE:
            t += max(1.0, outcome.retry_after)
            outcome = yield req(f"/api/v1/users/{uid}", uid)
        if outcome.action in (Action.BLOCK, Action.CHALLENGE, Action.THROTTLE):
            return
        if world.rng.random() < 0.1:
            t += world.think(4)
            yield req(f"/api/v1/users/{uid}/followers")


def search_crawler(world: World, tool: Tool, ip: str, session: str, start: float, pages: int,
                   robots: bool = False) -> Actor:
    """One visit of a verified search engine from one of its addresses: robots.txt when
    asked, then public profile pages, a few seconds apart (engines fetch a site in short
    bursts from many addresses, not in one long session)."""
    t = start
    if robots:
        yield Req(t, ip, "/robots.txt", tool.page(HOST), tool.ja4, session=session)
    pop = world.population
    for _ in range(pages):
        t += world.rng.uniform(1.0, 10.0)
        user = pop.by_id(world.rng.randrange(1, len(pop) + 1))
        if user is None:
            continue
        outcome = yield Req(t, ip, f"/u/{user.username}", tool.page(HOST), tool.ja4, target=user.id,
                            session=session)
        if outcome.action is Action.THROTTLE:
            t += max(1.0, outcome.retry_after)
