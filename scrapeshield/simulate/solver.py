"""A browser's part of the challenge, done for simulated browsers: fetch the page's data,
find the proof of work (as challenge.js does), post it, keep the pass cookie."""

from __future__ import annotations

import hashlib
import json
import re

from scrapeshield.actions.challenge import ChallengeService

_DATA = re.compile(rb'<script type="application/json" id="ss-challenge">(.*?)</script>', re.S)
MAX_NONCE = 1 << 24


def solve(service: ChallengeService, ip: str, user_agent: str, path: str) -> str | None:
    page = service.page(ip, user_agent, path)
    found = _DATA.search(page)
    if found is None:
        return None
    data = json.loads(found.group(1))
    prefix, bits = f"{data['challenge']}:".encode(), int(data["difficulty"])
    for nonce in range(MAX_NONCE):
        digest = hashlib.sha256(prefix + str(nonce).encode()).digest()
        if not bits or not int.from_bytes(digest, "big") >> (256 - bits):
            result = service.verify(
                {"token": data["token"], "solution": str(nonce), "return_to": data["return_to"]},
                ip, user_agent,
            )
            return result.pass_cookie if result.ok else None
    return None
