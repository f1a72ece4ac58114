"""Challenge ids come from a pool of OS randomness: each is handed out once, across threads,
and a forked worker (gunicorn) never hands out its parent's. The IPv4 check a challenge's
binding uses agrees with ``ipaddress``."""

from __future__ import annotations

import ipaddress
import os
import threading

from hypothesis import given
from hypothesis import strategies as st

from scrapeshield.actions.challenge_token import IDS as _IDS
from scrapeshield.actions.challenge_token import random_id as _random_id
from scrapeshield.context import ipv4_number


def test_ids_are_sixteen_random_bytes_each_handed_out_once_across_threads() -> None:
    drawn: list[list[bytes]] = [[] for _ in range(4)]

    def draw(into: list[bytes]) -> None:
        into.extend(_random_id() for _ in range(3 * _IDS))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    ids = [cid for into in drawn for cid in into]
    assert len(ids) == 12 * _IDS and all(len(cid) == 16 for cid in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_ids_of_its_own() -> None:
    _random_id()  # the parent's pool is filled: a fork copies it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out at once (no test teardown in the child)
        try:
            os.write(write, b"".join(_random_id() for _ in range(8)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = b"".join(_random_id() for _ in range(8))
    assert len(child) == len(parent) == 128 and child != parent
    ids = {child[i : i + 16] for i in range(0, 128, 16)} | {parent[i : i + 16] for i in range(0, 128, 16)}
    assert len(ids) == 16


@given(st.one_of(
    st.ip_addresses(v=4).map(str),
    st.lists(st.text("0123456789", min_size=0, max_size=4), min_size=3, max_size=5).map(".".join),
    st.text("0123456789.٣ \n+-x", max_size=17),
))
def test_the_ipv4_check_takes_what_ipaddress_takes(text: str) -> None:
    try:
        expected = int(ipaddress.IPv4Address(text))
    except ValueError:
        expected = -1
    assert ipv4_number(text) == expected
