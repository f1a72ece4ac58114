"""degrade (and the rewriting under decoy): personal fields out of JSON and HTML responses.

The route's ``personal_fields`` name JSON keys, found at any depth. Its ``html_fields``
say where the fields sit in the page: ``tag``, ``.class`` or ``tag.class``, with
``@attr`` for an attribute. HTML is rewritten with patterns, not parsed: the shield sits
in front of pages it did not write, and a pattern that misses leaves the page intact
rather than breaking it. A field's text found in an element is also replaced wherever
else it appears (the page title, a mailto: link).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape, unescape
from typing import Any

# field name, the text it had (None for an attribute) → the text to put instead ("" removes)
Replace = Callable[[str, str], str]

MAX_BODY = 2_000_000  # larger responses are not rewritten (see hosts: they are refused instead)
_MIN_ECHO = 4  # shorter field texts are not replaced elsewhere in the page (too common)
_BLANK_IMAGE = "data:,"


@dataclass(frozen=True, slots=True)
class Selector:
    field: str
    tag: str  # "" for any
    cls: str  # "" for any
    attr: str  # "" for the element's content


def selectors(html_fields: tuple[tuple[str, str], ...]) -> tuple[Selector, ...]:
    out = []
    for field, text in html_fields:
        element, _, attr = text.partition("@")
        tag, _, cls = element.partition(".")
        out.append(Selector(field, tag.lower(), cls, attr.lower()))
    return tuple(out)


def removed(field: str, old: str) -> str:
    """The degrade replacement: nothing (an empty image for attributes)."""
    return _BLANK_IMAGE if old.startswith(("/", "http", "data:")) else ""


def rewrite_json(body: bytes, fields: tuple[str, ...], replace: Replace | None) -> bytes | None:
    """The JSON body with ``fields`` removed (``replace`` None) or replaced; None if not JSON."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    wanted = frozenset(fields)
    _walk(data, wanted, replace, 0)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _walk(node: Any, wanted: frozenset[str], replace: Replace | None, depth: int) -> None:
    if depth > 32:
        return
    if isinstance(node, dict):
        for key in [k for k in node if k in wanted]:
            if replace is None:
                del node[key]
            else:
                node[key] = replace(key, str(node[key]))
        for value in node.values():
            _walk(value, wanted, replace, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _walk(item, wanted, replace, depth + 1)


def rewrite_html(html: str, found: tuple[Selector, ...], replace: Replace) -> str:
    """The page with every selected field's text replaced (``replace`` gives HTML-safe text
    unescaped; it is escaped here)."""
    echoes: dict[str, str] = {}
    for sel in found:
        html = _one(html, sel, replace, echoes)
    for old, new in sorted(echoes.items(), key=lambda item: -len(item[0])):
        html = html.replace(escape(old, quote=True), escape(new, quote=True))
        html = html.replace(escape(old, quote=False), escape(new, quote=False))
    return html


def _one(html: str, sel: Selector, replace: Replace, echoes: dict[str, str]) -> str:
    tag = re.escape(sel.tag) if sel.tag else r"[a-zA-Z][a-zA-Z0-9]*"
    if sel.attr:
        pattern = re.compile(rf"<({tag})(\s[^>]*)?>", re.IGNORECASE)

        def attribute(m: re.Match[str]) -> str:
            attrs = m.group(2) or ""
            if not _has_class(attrs, sel.cls):
                return m.group(0)
            attr_re = re.compile(rf'(\s{re.escape(sel.attr)}\s*=\s*")([^"]*)(")', re.IGNORECASE)
            new = attr_re.sub(lambda a: a.group(1) + escape(replace(sel.field, unescape(a.group(2))))
                              + a.group(3), attrs, count=1)
            return f"<{m.group(1)}{new}>"

        return pattern.sub(attribute, html)
    opening = re.compile(rf"<({tag})(\s[^>]*)?>", re.IGNORECASE)
    parts: list[str] = []
    done = 0
    for m in opening.finditer(html):
        if m.start() < done or not _has_class(m.group(2) or "", sel.cls):
            continue
        close = re.compile(rf"</{re.escape(m.group(1))}\s*>", re.IGNORECASE).search(html, m.end())
        if close is None:
            continue
        old = unescape(re.sub(r"<[^>]*>", "", html[m.end():close.start()])).strip()
        new = replace(sel.field, old)
        if len(old) >= _MIN_ECHO:
            echoes[old] = new
        parts += [html[done:m.end()], _markup(sel.field, new)]
        done = close.start()
    parts.append(html[done:])
    return "".join(parts)


def _has_class(attrs: str, cls: str) -> bool:
    if not cls:
        return True
    m = re.search(r'\sclass\s*=\s*"([^"]*)"', attrs, re.IGNORECASE)
    return m is not None and cls in m.group(1).split()


def _markup(field: str, text: str) -> str:
    if field == "email" and "@" in text:
        safe = escape(text, quote=True)
        return f'<a href="mailto:{safe}">{safe}</a>'
    return escape(text, quote=False)
