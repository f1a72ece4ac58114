"""The engine as the compiled WSGI host (hosts/wsgi.py) calls it, as protocols.

That host is compiled (mypyc): read through the Engine class, ``shield.engine`` would be
checked to be an Engine on every request, and a stand-in (a test's fault-injecting wrapper,
tests/wsgi_apps/faults.py) would fail that check with a TypeError instead of its own fault.
Read through these protocols, whatever the shield holds is called as it is (bench/hostcost.py
times the parts by such stand-ins too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.types import Decision, RequestContext


class ContextsView(Protocol):
    def build(self, ts: float, peer: str, method: str, path: str,
              headers: Iterable[tuple[str, str]], scheme: str = "http", query: str = "",
              ) -> RequestContext: ...

    def from_environ(self, ts: float, peer: str, method: str, path: str,
                     items: Iterable[tuple[object, object]], names: dict[object, str],
                     scheme: str = "http") -> RequestContext | None: ...


class EngineView(Protocol):
    @property
    def contexts(self) -> ContextsView: ...

    @property
    def policy(self) -> CompiledPolicy: ...

    @property
    def needs_await(self) -> bool: ...

    def decide(self, ctx: RequestContext) -> Decision: ...

    async def adecide(self, ctx: RequestContext) -> Decision: ...

    def observe(self, ctx: RequestContext, status: int) -> None: ...


class ShieldView(Protocol):
    @property
    def engine(self) -> EngineView: ...
