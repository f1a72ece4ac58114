"""Stage 1: client IP through trusted proxies only, identity keys, bad input."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from scrapeshield.context import ContextBuilder
from scrapeshield.policy.loader import load_policy, parse_policy

TRUSTING = parse_policy(
    "trusted_proxies: [10.0.0.0/8, '::1/128']\n"
    "identity: {session_cookie: sid, account_pattern: '^(\\d+)\\.'}\n"
    "routes:\n  - {name: p, path: '/api/v1/users/{id:int}', record: id}\n"
)


def build(peer: str, headers: list[tuple[str, str]], policy=TRUSTING, path: str = "/"):  # type: ignore[no-untyped-def]
    return ContextBuilder(policy).build(1.0, peer, "GET", path, headers)


def test_untrusted_peer_xff_ignored() -> None:
    ctx = build("203.0.113.9", [("x-forwarded-for", "1.2.3.4")])
    assert ctx.ip == "203.0.113.9" and ctx.network == "203.0.113.0/24"


def test_trusted_proxy_xff_used_rightmost_untrusted() -> None:
    # A client spoofed "6.6.6.6"; the trusted proxy appended the real peer 198.51.100.7.
    ctx = build("10.1.1.1", [("x-forwarded-for", "6.6.6.6, 198.51.100.7")])
    assert ctx.ip == "198.51.100.7"


def test_chain_of_trusted_proxies_walked() -> None:
    ctx = build("10.1.1.1", [("x-forwarded-for", "198.51.100.7, 10.2.2.2")])
    assert ctx.ip == "198.51.100.7"


def test_multiple_xff_headers_concatenated() -> None:
    ctx = build("10.1.1.1", [("x-forwarded-for", "198.51.100.7"), ("x-forwarded-for", "10.9.9.9")])
    assert ctx.ip == "198.51.100.7"


def test_malformed_xff_entries_stop_the_walk() -> None:
    ctx = build("10.1.1.1", [("x-forwarded-for", "198.51.100.7, not-an-ip, 10.3.3.3")])
    assert ctx.ip == "10.3.3.3"  # never believe what is left of garbage
    ctx = build("10.1.1.1", [("x-forwarded-for", "")])
    assert ctx.ip == "10.1.1.1"


def test_ipv6_and_mapped_addresses() -> None:
    ctx = build("2001:db8::1", [])
    assert ctx.ip == "2001:db8::1" and ctx.network == "2001:db8::/48"
    ctx = build("::ffff:192.0.2.5", [])
    assert ctx.ip == "192.0.2.5"
    ctx = build("::1", [("x-forwarded-for", "[2001:db8::7]")])
    assert ctx.ip == "2001:db8::7"


def test_invalid_peer_is_safe() -> None:
    ctx = build("garbage", [])
    assert ctx.ip == "0.0.0.0"


def test_account_session_and_record() -> None:
    ctx = build(
        "192.0.2.1",
        [("cookie", "a=b; sid=42.secretvalue; other=1"), ("authorization", "Bearer tok")],
        path="/api/v1/users/7",
    )
    assert ctx.account == "42"
    assert ctx.session and "secretvalue" not in ctx.session  # only a hash is kept
    assert ctx.token and "tok" not in ctx.token
    assert ctx.route == "p" and ctx.record == "user:7"


def test_tls_fingerprint_only_from_trusted_proxy() -> None:
    assert build("192.0.2.1", [("x-ja4", "t13d1516h2_x")]).tls_fingerprint == ""
    assert build("10.0.0.5", [("x-ja4", "t13d1516h2_x")]).tls_fingerprint == "t13d1516h2_x"


def test_fingerprint_stable_across_pages_of_one_client() -> None:
    base = [("host", "x"), ("user-agent", "UA"), ("accept-language", "en")]
    a = build("192.0.2.1", [*base, ("referer", "/a"), ("cookie", "sid=1.x")])
    b = build("192.0.2.1", base)
    c = build("192.0.2.1", [("user-agent", "UA"), ("host", "x"), ("accept-language", "en")])
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_oversized_headers_truncated() -> None:
    policy = load_policy()
    builder = ContextBuilder(policy)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/" + "a" * 10_000,
        "client": ("192.0.2.1", 1),
        "headers": [(b"user-agent", b"x" * 100_000)] + [(b"x-h%d" % i, b"v") for i in range(1000)],
    }
    ctx = builder.from_asgi(scope, 1.0)
    assert len(ctx.user_agent) <= 1024 and len(ctx.headers) <= 128 and len(ctx.path) <= 2048


ip_text = st.one_of(
    st.ip_addresses().map(str),
    st.text(max_size=40),
    st.just(""),
    st.just("[::1]"),
)


@settings(max_examples=400, deadline=None)
@given(peer=ip_text, hops=st.lists(ip_text, max_size=6), extra=st.text(max_size=50))
def test_xff_parser_never_crashes_and_returns_an_ip(peer: str, hops: list[str], extra: str) -> None:
    ctx = build(peer, [("x-forwarded-for", ", ".join(hops) + extra), ("cookie", extra)])
    ipaddress.ip_address(ctx.ip)
    ipaddress.ip_network(ctx.network)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=20), st.text(max_size=60)), max_size=20))
def test_arbitrary_headers_never_crash(headers: list[tuple[str, str]]) -> None:
    ctx = build("10.0.0.1", [(k.lower(), v) for k, v in headers])
    assert ctx.ip


def test_header_name_sequences_stay_bounded_and_give_the_same_contexts() -> None:
    """The builder remembers header-name sequences (a trie, for the names tuple and the
    fingerprint): names are the client's to choose, so it is bounded and starts again when
    full, and what it answers never depends on what it remembers."""
    from scrapeshield.context import _SHAPES_MAX

    builder = ContextBuilder(TRUSTING)
    for i in range(300):  # 40 new names a request: the trie fills up and starts again
        sent = [("x-forwarded-for", "198.51.100.7"), ("user-agent", f"UA {i % 3}"),
                ("cookie", f"sid={i % 5}.x"), *[(f"x-junk-{i}-{j}", "v") for j in range(40)],
                ("accept-language", "en")]
        scope = {"type": "http", "method": "GET", "path": "/api/v1/users/7", "client": ("10.0.0.1", 1),
                 "query_string": b"", "headers": [(k.encode(), v.encode()) for k, v in sent]}
        fresh = ContextBuilder(TRUSTING).build(1.0, "10.0.0.1", "GET", "/api/v1/users/7", sent)
        for ctx in (builder.from_asgi(scope, 1.0),
                    builder.build(1.0, "10.0.0.1", "GET", "/api/v1/users/7", sent)):
            assert ctx == fresh
            assert ctx.header_names == tuple(k for k, _ in sent)
            assert ctx.ip == "198.51.100.7" and ctx.account == str(i % 5) and ctx.user_agent == f"UA {i % 3}"
        assert builder._shapes <= _SHAPES_MAX
    # Requests with a sequence seen before share its names tuple (read by detectors).
    again = [("user-agent", "UA"), ("accept", "*/*")]
    assert builder.build(2.0, "192.0.2.1", "GET", "/", again).header_names is \
        builder.build(3.0, "192.0.2.9", "GET", "/", again).header_names


_NAMES = [b"user-agent", b"User-Agent", b"accept", b"cookie", b"x-forwarded-for", b"accept-language", b"a"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_NAMES), max_size=6), min_size=1, max_size=25))
def test_header_names_found_as_from_a_fresh_builder(requests: list[list[bytes]]) -> None:
    """Each node of the header-name trie tries the first name kept there before any lookup:
    requests whose names take that edge, another one, or one not seen yet get the contexts
    a builder that never saw a request before gives."""
    builder = ContextBuilder(TRUSTING)
    for n, names in enumerate(requests):
        scope = {"type": "http", "method": "GET", "path": "/", "client": ("10.0.0.1", 1),
                 "query_string": b"", "headers": [(k, f"v{n}".encode()) for k in names]}
        assert builder.from_asgi(scope, 1.0) == ContextBuilder(TRUSTING).from_asgi(scope, 1.0)


_VALUES = [b"", b"a", b"Mozilla/5.0 X", b"caf\xe9", b"x" * 1100, b"x" * 1100 + b"y", b"gzip, br"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from([*_NAMES[:6], b"authorization"]),
                                   st.sampled_from(_VALUES)), max_size=6), min_size=1, max_size=25))
def test_header_values_found_as_from_a_fresh_builder(requests: list[list[tuple[bytes, bytes]]]) -> None:
    """A node of the trie remembers the last value of a repeating header and its text: a
    request with the same bytes, other bytes, none, an empty or an oversized value gets the
    context a builder that never saw a request before gives."""
    builder = ContextBuilder(TRUSTING)
    for headers in requests:
        scope = {"type": "http", "method": "GET", "path": "/", "client": ("127.0.0.1", 1),
                 "query_string": b"", "headers": headers}
        assert builder.from_asgi(scope, 1.0) == ContextBuilder(TRUSTING).from_asgi(scope, 1.0)


def test_repeated_header_values_are_one_text_and_secrets_are_not_kept() -> None:
    """A browser build's values repeat from one client to the next: the same text object
    each time (hashed once, found by identity after). Cookies, tokens and addresses are
    the client's own: no node keeps them past its request."""
    builder = ContextBuilder(TRUSTING)

    def scope(ip: str, cookie: str) -> dict[str, object]:
        return {"type": "http", "method": "GET", "path": "/", "client": ("10.0.0.1", 1), "query_string": b"",
                "headers": [(b"user-agent", b"Mozilla/5.0 (X11) Chrome/126.0"),
                            (b"x-forwarded-for", ip.encode()), (b"cookie", cookie.encode()),
                            (b"authorization", b"Bearer s3cret")]}

    first = builder.from_asgi(scope("198.51.100.7", "sid=1.a"), 1.0)
    second = builder.from_asgi(scope("198.51.100.8", "sid=2.b"), 2.0)
    assert second.user_agent is first.user_agent and second.headers[0] is first.headers[0]
    assert (second.ip, second.account) == ("198.51.100.8", "2")
    node, kept = builder._root, []
    while node.first_step is not None:
        node = node.first_step
        kept.append((node.name, node.last[1]))
    assert kept == [("user-agent", "Mozilla/5.0 (X11) Chrome/126.0"), ("x-forwarded-for", ""),
                    ("cookie", ""), ("authorization", "")]
