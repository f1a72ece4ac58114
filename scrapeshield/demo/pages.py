"""HTML for the demo social network: plain functions returning strings.

Every value that came from a user record or a request goes through ``esc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote, urlencode

from scrapeshield.demo.population import HONEYPOT_USERNAME, DemoUser

SITE_NAME = "Murmur"
_PALETTE = ("#e76f51", "#2a9d8f", "#264653", "#f4a261", "#8e44ad", "#3a86ff", "#d62828",
            "#588157", "#6d597a", "#118ab2")


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def profile_href(user: DemoUser) -> str:
    return f"/u/{quote(user.username)}"


def layout(title: str, body: str, viewer: DemoUser | None) -> str:
    if viewer is None:
        account = '<a class="signin" href="/login">Sign in</a>'
    else:
        account = (f'<span class="whoami">Signed in as <a href="{esc(profile_href(viewer))}">'
                   f"@{esc(viewer.username)}</a></span>"
                   '<form method="post" action="/logout" class="inline">'
                   '<button type="submit">Sign out</button></form>')
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {SITE_NAME}</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        '<script src="/static/app.js" defer></script></head><body>'
        f'<header class="top"><a class="brand" href="/">{SITE_NAME}</a>'
        '<form class="search" method="get" action="/search" role="search">'
        '<input type="search" name="q" placeholder="Search people" minlength="2" maxlength="100"'
        ' aria-label="Search people"><button type="submit">Search</button></form>'
        f'<nav class="account">{account}</nav></header>'
        f'<main>{body}</main><footer class="foot">© {SITE_NAME} demo network · '
        "all people here are synthetic</footer></body></html>\n"
    )


def _avatar(user: DemoUser, size: int = 40) -> str:
    return (f'<img class="avatar" src="{esc(user.photo)}" alt="" width="{size}" '
            f'height="{size}" loading="lazy">')


def _card(user: DemoUser) -> str:
    return (f'<li class="card">{_avatar(user)}<a href="{esc(profile_href(user))}">'
            f'{esc(user.name)}</a> <span class="handle">@{esc(user.username)}</span></li>')


def _more(path: str, params: dict[str, str], cursor: str | None) -> str:
    if cursor is None:
        return ""
    href = f"{path}?{urlencode({**params, 'cursor': cursor})}"
    return f'<p class="more"><a href="{esc(href)}" rel="next">More</a></p>'


def feed_page(items: Sequence[tuple[DemoUser, str]], viewer: DemoUser | None) -> str:
    posts = "".join(
        f'<article class="post">{_avatar(user)}<div><a class="author" '
        f'href="{esc(profile_href(user))}">{esc(user.name)}</a> '
        f'<span class="handle">@{esc(user.username)}</span><p>{esc(text)}</p></div></article>'
        for user, text in items
    )
    # A link no person sees or can tab to; only something parsing the markup follows it.
    trap = (f'<div class="aux-links" aria-hidden="true"><a href="/u/{HONEYPOT_USERNAME}" '
            'rel="nofollow" tabindex="-1">Archive</a></div>')
    return layout("Home", f'<h1>Latest</h1><section class="feed">{posts}</section>{trap}', viewer)


def profile_page(user: DemoUser, posts: Sequence[str], followers: int,
                 viewer: DemoUser | None) -> str:
    items = "".join(f'<li class="post"><p>{esc(p)}</p></li>' for p in posts)
    body = (
        f'<section class="profile">{_avatar(user, 96)}<div><h1>{esc(user.name)}</h1>'
        f'<p class="handle">@{esc(user.username)}</p><p class="bio">{esc(user.bio)}</p>'
        f'<dl class="facts"><dt>Location</dt><dd class="location">{esc(user.city)}, '
        f'{esc(user.country)}</dd><dt>Phone</dt><dd class="phone">{esc(user.phone)}</dd>'
        f'<dt>E-mail</dt><dd class="email"><a href="mailto:{esc(user.email)}">{esc(user.email)}'
        f'</a></dd><dt>Joined</dt><dd>{esc(user.created_at)}</dd></dl>'
        f'<p><a class="followers" href="{esc(profile_href(user))}/followers">{followers} '
        f'followers</a></p></div></section><h2>Recent posts</h2><ul class="posts">{items}</ul>'
    )
    return layout(f"{user.name} (@{user.username})", body, viewer)


def followers_page(user: DemoUser, followers: Sequence[DemoUser], cursor: str | None,
                   viewer: DemoUser | None) -> str:
    cards = "".join(_card(f) for f in followers) or "<li>No followers yet.</li>"
    body = (f'<h1>People following <a href="{esc(profile_href(user))}">{esc(user.name)}</a></h1>'
            f'<ul class="people">{cards}</ul>'
            f"{_more(profile_href(user) + '/followers', {}, cursor)}")
    return layout(f"Followers of @{user.username}", body, viewer)


def search_page(q: str, results: Sequence[DemoUser], cursor: str | None,
                viewer: DemoUser | None, error: str | None = None) -> str:
    if error is not None:
        body = f'<h1>Search</h1><p class="error">{esc(error)}</p>'
    elif not q:
        body = "<h1>Search</h1><p>Find people by name or username.</p>"
    else:
        cards = "".join(_card(u) for u in results) or "<li>Nobody matches.</li>"
        body = (f"<h1>People matching “{esc(q)}”</h1><ul class=\"people\">{cards}</ul>"
                f"{_more('/search', {'q': q}, cursor)}")
    return layout("Search", body, viewer)


def login_page(viewer: DemoUser | None, error: str | None = None) -> str:
    notice = f'<p class="error">{esc(error)}</p>' if error else ""
    body = (
        f"<h1>Sign in</h1>{notice}"
        '<form class="login" method="post" action="/login">'
        '<label>Username <input name="username" autocomplete="username" required></label>'
        '<label>Password <input name="password" type="password" autocomplete="current-password"'
        ' required></label><button type="submit">Sign in</button></form>'
    )
    return layout("Sign in", body, viewer)


def error_page(status: int, message: str, viewer: DemoUser | None) -> str:
    body = f'<h1>{status}</h1><p class="error">{esc(message)}</p><p><a href="/">Home</a></p>'
    return layout(message, body, viewer)


def avatar_svg(user: DemoUser) -> str:
    initials = "".join(part[:1] for part in user.name.split()[:2]).upper()
    colour = _PALETTE[(user.id * 7 + len(user.username)) % len(_PALETTE)]
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
        f'<rect width="96" height="96" rx="48" fill="{colour}"/>'
        '<text x="48" y="60" font-family="Helvetica, Arial, sans-serif" font-size="36" '
        f'fill="#fff" text-anchor="middle">{esc(initials)}</text></svg>'
    )
