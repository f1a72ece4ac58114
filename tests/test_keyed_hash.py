"""keyed_hash: HmacSha256 is exactly hmac's HMAC-SHA256 (RFC 2104), KeyedBlake2b BLAKE2b's keyed mode."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from scrapeshield.events import Pseudonymiser
from scrapeshield.keyed_hash import HmacSha256, KeyedBlake2b


@given(key=st.binary(max_size=200), prefix=st.binary(max_size=40), msg=st.binary(max_size=300))
def test_same_digest_as_hmac(key: bytes, prefix: bytes, msg: bytes) -> None:
    keyed = HmacSha256(key, prefix)
    assert keyed.digest(msg) == hmac.new(key, prefix + msg, hashlib.sha256).digest()
    assert keyed.digest(msg) == keyed.digest(msg)  # the keyed state is copied, never consumed


def test_rfc4231_case_2() -> None:
    keyed = HmacSha256(b"Jefe")
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert keyed.digest(b"what do ya want for nothing?").hex() == expected


def test_long_key_is_hashed_first() -> None:  # RFC 4231 case 6: a 131-byte key
    keyed = HmacSha256(b"\xaa" * 131)
    expected = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    assert keyed.digest(b"Test Using Larger Than Block-Size Key - Hash Key First").hex() == expected


def test_pseudonyms_unchanged() -> None:
    """Stored pseudonyms must stay what they were: "p:" and hmac's first 24 hex digits."""
    key = b"k" * 32
    name = Pseudonymiser(key)("203.0.113.9")
    assert name == "p:" + hmac.new(key, b"203.0.113.9", hashlib.sha256).hexdigest()[:24]


@given(key=st.binary(min_size=1, max_size=64), person=st.binary(max_size=16), msg=st.binary(max_size=300))
def test_keyed_blake2b_is_blake2bs_keyed_mode(key: bytes, person: bytes, msg: bytes) -> None:
    keyed = KeyedBlake2b(key, person)
    assert keyed.digest(msg) == hashlib.blake2b(msg, key=key, person=person, digest_size=32).digest()
    assert keyed.digest(msg) == keyed.digest(msg)  # the keyed state is copied, never consumed


def test_keyed_blake2b_hashes_a_long_key_first() -> None:
    key = b"\xaa" * 131
    short = hashlib.blake2b(key, digest_size=64).digest()
    assert KeyedBlake2b(key).digest(b"m") == hashlib.blake2b(b"m", key=short, digest_size=32).digest()
    assert KeyedBlake2b(key).digest(b"m") != KeyedBlake2b(key[:64]).digest(b"m")
