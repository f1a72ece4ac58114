"""The challenge page: the shipped template and script filled once, one JSON object per challenge."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources

_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii


def render(verify_path: str, challenge: str, bits: int, return_to: str, token: str) -> bytes:
    """The page of one challenge (``challenge`` and ``token`` are hex and base64url).

    Its data is what json.dumps({...}, ensure_ascii=True) writes, with "<>&" escaped (only
    the path can hold them), made without json's generic machinery: a page is served per
    challenge, and a rotating fleet is challenged at every other request.
    """
    before, after = page_parts(verify_path)
    return before + page_data(challenge, bits, return_to, token).encode() + after


def page_data(challenge: str, bits: int, return_to: str, token: str) -> str:
    """The one per-challenge part of the page: ASCII on one line (an edge proxy that fills in
    the page itself gets it in a response header, hosts/auth_request.py)."""
    quoted = _json_string(return_to)
    if "<" in quoted or ">" in quoted or "&" in quoted:
        quoted = quoted.translate(_JSON_ESCAPES)
    return (f'{{"challenge": "{challenge}", "difficulty": {bits}, '
            f'"return_to": {quoted}, "token": "{token}"}}')


@cache
def assets() -> tuple[str, str]:
    base = resources.files("scrapeshield.actions")
    template = (base / "challenge_page.html").read_text("utf-8")
    script = (base / "challenge.js").read_text("utf-8")
    if "</" in script:
        raise RuntimeError("challenge.js must not contain '</' (it is inlined in a <script>)")
    return template, script


@cache
def page_parts(verify_path: str) -> tuple[bytes, bytes]:
    """The page around its one per-challenge part, filled once."""
    template, script = assets()
    before, marker, after = template.partition("{{data}}")
    if not marker or "{{data}}" in after:
        raise RuntimeError("challenge_page.html must hold '{{data}}' exactly once")

    def fill(part: str) -> bytes:
        return part.replace("{{verify_path}}", verify_path).replace("{{script}}", script).encode("utf-8")

    return fill(before), fill(after)
