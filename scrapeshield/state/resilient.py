"""A networked store behind a circuit breaker, with the policy's fail mode when it is down.

Each call goes to the primary (Redis) while the circuit is closed. ``failures``
consecutive failures (errors or time-outs: the primary's own short time-out bounds
each one) open the circuit for ``reset_after`` seconds: calls then skip the primary.
After that one call probes it (half-open); success closes the circuit, failure opens
it again. While the primary is not answering, the fail mode decides:

- ``open``: the answer comes from the local in-memory fallback, so each node enforces
  the limits on its own traffic (a client spread over N nodes gets up to N times the
  budget) until the primary is back; the fallback's counts are not merged back.
- ``closed``: ``StateError`` is raised and the engine answers with its fail-closed
  decision.

Every transition is logged once; the counts are exported by ``metrics.py``. Time comes
from the injected clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Literal, cast

from scrapeshield.clock import Clock, SystemClock
from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate, StateSender, StateStore
from scrapeshield.state.memory import MemoryStore

log = logging.getLogger("scrapeshield.state")

Circuit = Literal["closed", "open", "half-open"]
Result = tuple[list[tuple[float, ...]], ClientMemory]


_UNSENT = object()  # the primary was skipped (circuit open) or failed to send
_LATER = object()  # the primary cannot split its call


class _Call:
    """What ``ResilientStore.receive`` needs: the call's arguments and the primary's ticket."""

    __slots__ = ("updates", "client", "now", "sent")

    def __init__(self, updates: Sequence[KeyUpdate], client: str, now: float, sent: object) -> None:
        self.updates = updates
        self.client = client
        self.now = now
        self.sent = sent


class ResilientStore:
    def __init__(
        self,
        primary: StateStore,
        fallback: StateStore | None = None,
        *,
        fail_mode: Callable[[], str] = lambda: "open",
        clock: Clock | None = None,
        failures: int = 3,
        reset_after: float = 5.0,
        name: str = "redis",
    ) -> None:
        self.primary = primary
        self.fallback: StateStore = fallback if fallback is not None else MemoryStore()
        self.does_io = primary.does_io
        self.fail_mode = fail_mode
        self.clock: Clock = clock or SystemClock()
        self.max_failures = max(1, failures)
        self.reset_after = reset_after
        self.name = name
        self.circuit: Circuit = "closed"
        self.failures = 0  # primary calls that failed, in all
        self.fallback_decisions = 0  # answered by the local fallback (fail mode open)
        self.refused_decisions = 0  # refused because the state was unavailable (fail mode closed)
        self.transitions = 0
        self._streak = 0  # consecutive failures
        self._opened_at = 0.0
        self._probing = False
        self._lock = threading.Lock()
        # A primary that sends its call apart from reading the reply (see ``send``).
        self._sender = cast(StateSender, primary) if hasattr(primary, "send") else None

    @property
    def up(self) -> bool:
        return self.circuit == "closed"

    # -- the protocol ------------------------------------------------------------------

    def update(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        if self._admit():
            try:
                result = self.primary.update(updates, client, now)
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return result
        return self._degraded(updates, client, now)

    def send(self, updates: Sequence[KeyUpdate], client: str, now: float) -> object:
        """``update``'s first half: the primary's call sent, if the circuit lets it."""
        sender = self._sender
        if sender is None:  # a primary that cannot split its call: all of it in ``receive``
            return _Call(updates, client, now, _LATER)
        sent: object = _UNSENT
        if self._admit():
            try:
                sent = sender.send(updates, client, now)
            except Exception as exc:
                self._failed(exc)
        return _Call(updates, client, now, sent)

    def receive(self, call: object) -> Result:
        """``update``'s second half: the primary's answer, or the fail mode's."""
        call = cast(_Call, call)
        if call.sent is _LATER:
            return self.update(call.updates, call.client, call.now)
        if call.sent is not _UNSENT and self._sender is not None:
            try:
                result = self._sender.receive(call.sent)
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return result
        return self._degraded(call.updates, call.client, call.now)

    async def aupdate(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        if self._admit():
            try:
                result = await self.primary.aupdate(updates, client, now)
            except Exception as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return result
        return self._degraded(updates, client, now)

    def keep(self, client: str, memory: ClientMemory) -> None:
        store = self.primary if self.circuit == "closed" else self.fallback
        try:
            store.keep(client, memory)
        except Exception:  # a lost memory write is not worth failing a decision for
            log.debug("keeping client memory failed", exc_info=True)

    def share_sets(self, specs: tuple[CounterSpec, ...], routes: Sequence[frozenset[str] | None]) -> None:
        """The primary's (``layout.Layout.share_sets``); the fallback keeps its own counts."""
        share = getattr(self.primary, "share_sets", None)
        if share is not None:
            share(specs, routes)

    def tracked_clients(self) -> int:
        if self.circuit == "closed":
            try:
                return self.primary.tracked_clients()
            except Exception:
                pass
        return self.fallback.tracked_clients()

    def close(self) -> None:
        close = getattr(self.primary, "close", None)
        if close is not None:
            close()

    # -- the breaker -------------------------------------------------------------------

    def _admit(self) -> bool:
        """Whether this call may go to the primary."""
        if self.circuit == "closed":
            return True
        with self._lock:
            if self.circuit == "open" and self.clock.now() - self._opened_at >= self.reset_after:
                self._move("half-open", "probing")
            if self.circuit == "half-open" and not self._probing:
                self._probing = True
                return True
        return False

    def _succeeded(self) -> None:
        self._streak = 0
        if self.circuit == "closed":
            return
        with self._lock:
            self._probing = False
            if self.circuit == "half-open":
                self._move("closed", "answering again")

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        with self._lock:
            self._streak += 1
            self._probing = False
            if self.circuit == "half-open" or (
                self.circuit == "closed" and self._streak >= self.max_failures
            ):
                self._opened_at = self.clock.now()
                self._move("open", f"{exc}; skipping it for {self.reset_after:g}s")

    def _degraded(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        if self.fail_mode() == "closed":
            self.refused_decisions += 1
            raise StateError(f"{self.name} state unavailable (circuit {self.circuit}); failing closed")
        self.fallback_decisions += 1
        return self.fallback.update(updates, client, now)

    def _move(self, to: Circuit, why: str) -> None:
        was, self.circuit = self.circuit, to
        self.transitions += 1
        mode = "local limits" if self.fail_mode() != "closed" else "failing closed"
        if to == "closed":
            log.warning("%s state backend recovered (%s after %s): %s", self.name, to, was, why)
        elif to == "open":
            log.error("%s state backend unavailable, circuit open (%s): %s", self.name, mode, why)
        else:
            log.info("%s state backend: circuit half-open, %s", self.name, why)
