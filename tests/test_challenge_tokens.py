"""Challenge tokens by version: 2 (issued) is sealed with keyed BLAKE2b; 1 (HMAC-SHA256, issued by
earlier releases) still opens, so passes already handed out last until they expire; a token
sealed with the other version's MAC, or of a version never issued, is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

from test_challenge import FAST, IP, SECRET, UA, challenge_data, solve

from scrapeshield.actions.challenge import ChallengeService
from scrapeshield.clock import ManualClock

_PASS = struct.Struct(">BB16sQ8s8s")  # version, kind "p", id, expiry ms, net, ua
_CHALLENGE = struct.Struct(">BB16sQB8s8s")  # version, kind "c", id, issued ms, bits, net, ua


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hmac_v1(payload: bytes) -> bytes:
    """How releases before version 2 sealed a token."""
    return hmac.new(SECRET, b"scrapeshield/challenge:" + payload, hashlib.sha256).digest()


def blake_v2(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, key=SECRET, person=b"scrapeshield/chl", digest_size=32).digest()


# What a token binds, worked out independently of the service: 203.0.113.7's /16 and the agent.
NET = hashlib.sha256(b"net:4/16/cb00").digest()[:8]
AGENT = hashlib.sha256(b"ua:" + UA.encode()).digest()[:8]


def new_service() -> tuple[ChallengeService, ManualClock]:
    clock = ManualClock()
    return ChallengeService(SECRET, clock, FAST), clock


def test_issued_tokens_are_version_2_sealed_with_keyed_blake2b() -> None:
    service, _ = new_service()
    data = challenge_data(service.page(IP, UA, "/u/alice"))
    body, mac = str(data["token"]).split(".")
    payload = unb64(body)
    assert payload[:2] == b"\x02c" and unb64(mac) == blake_v2(payload)
    assert payload[_CHALLENGE.size - 16 :] == NET + AGENT + b"/u/alice"
    form = {"token": str(data["token"]), "return_to": "/u/alice",
            "solution": solve(str(data["challenge"]), int(str(data["difficulty"])))}
    cookie = service.verify(form, IP, UA).pass_cookie
    assert cookie is not None
    body, mac = cookie.split(".")
    assert unb64(body)[:2] == b"\x02p" and unb64(mac) == blake_v2(unb64(body))
    assert service.check_pass(cookie, IP, UA).valid


def test_a_pass_issued_as_version_1_still_opens() -> None:
    service, clock = new_service()
    expiry_ms = int((clock.now() + 600) * 1000)
    payload = _PASS.pack(1, ord("p"), b"\x07" * 16, expiry_ms, NET, AGENT)
    cookie = f"{b64(payload)}.{b64(hmac_v1(payload))}"
    assert service.check_pass(cookie, IP, UA).reason == "ok"
    assert service.check_pass(cookie, "203.0.1.1", UA + "x").reason == "wrong-agent"
    clock.advance(601)
    assert service.check_pass(cookie, IP, UA).reason == "expired"


def test_a_version_1_challenge_in_flight_is_still_verified() -> None:
    service, clock = new_service()
    cid = bytes(range(16))
    payload = _CHALLENGE.pack(1, ord("c"), cid, int(clock.now() * 1000), 8, NET, AGENT) + b"/search"
    form = {"token": f"{b64(payload)}.{b64(hmac_v1(payload))}", "return_to": "/",
            "solution": solve(cid.hex(), 8)}
    result = service.verify(form, IP, UA)
    assert (result.ok, result.return_to) == (True, "/search")
    assert result.pass_cookie is not None and unb64(result.pass_cookie.split(".")[0])[0] == 2
    assert service.verify(form, IP, UA).reason == "replayed"


def test_the_version_names_the_mac_and_an_unknown_version_is_refused() -> None:
    service, clock = new_service()
    expiry_ms = int((clock.now() + 600) * 1000)
    for version in (1, 2, 3, 0, 255):
        payload = _PASS.pack(version, ord("p"), b"\x07" * 16, expiry_ms, NET, AGENT)
        good = {1: hmac_v1, 2: blake_v2}.get(version)
        for seal in (hmac_v1, blake_v2):
            reason = service.check_pass(f"{b64(payload)}.{b64(seal(payload))}", IP, UA).reason
            assert reason == ("ok" if seal is good else "bad-signature"), (version, seal)
    assert service.check_pass(f".{b64(blake_v2(b''))}", IP, UA).reason == "malformed"
