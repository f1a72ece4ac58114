"""Prometheus metrics, read at scrape time so the request path only bumps plain counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from scrapeshield.types import Action, Decision, RequestContext

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield


_ALLOW = Action.ALLOW  # a module constant: ``Action.ALLOW`` goes through EnumType.__getattr__


class DecisionCounter:
    """A decision listener: counts per action, and personal records served."""

    def __init__(self) -> None:
        self.by_action: dict[Action, int] = dict.fromkeys(Action, 0)
        self.records_served = 0

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        action = decision.action
        self.by_action[action] += 1
        if action is _ALLOW and ctx.record:
            self.records_served += 1


class ShieldCollector(Collector):
    def __init__(self, shield: Shield) -> None:
        self.shield = shield

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self.shield
        decisions = CounterMetricFamily(
            "scrapeshield_decisions", "Decisions taken, by action", labels=["action"]
        )
        for action, count in s.counter.by_action.items():
            decisions.add_metric([action.value], count)
        yield decisions
        yield CounterMetricFamily(
            "scrapeshield_records_served",
            "Requests for a personal record that were allowed",
            value=s.counter.records_served,
        )
        yield CounterMetricFamily(
            "scrapeshield_decision_errors",
            "Internal errors answered with the fail mode",
            value=s.engine.errors,
        )
        yield CounterMetricFamily(
            "scrapeshield_events_recorded", "Events written to the database",
            value=s.recorder.recorded,
        )
        yield CounterMetricFamily(
            "scrapeshield_events_dropped", "Events dropped (queue full, or disk spool full)",
            value=s.recorder.dropped,
        )
        yield CounterMetricFamily(
            "scrapeshield_events_write_errors", "Failed event deliveries (retried from the spool)",
            value=s.recorder.write_errors,
        )
        yield CounterMetricFamily(
            "scrapeshield_events_spooled", "Events written to the disk spool while the database "
            "or stream was unavailable", value=s.recorder.spooled,
        )
        yield GaugeMetricFamily(
            "scrapeshield_events_spool_pending", "Spooled events not delivered yet",
            value=s.recorder.spool_pending,
        )
        yield GaugeMetricFamily(
            "scrapeshield_events_sink_up", "1 when the last event delivery worked",
            value=1 if s.recorder.sink_ok else 0,
        )
        yield CounterMetricFamily(
            "scrapeshield_policy_reload_failures", "Policy reloads rejected",
            value=s.policy_errors,
        )
        yield GaugeMetricFamily(
            "scrapeshield_tracked_keys", "Keys held by the counter state",
            value=s.store.tracked_clients(),
        )
        yield GaugeMetricFamily(
            "scrapeshield_list_entries", "Live block/allow entries", value=len(s.engine.lists)
        )
        yield from _state_metrics(s.store)
        yield from _console_metrics(s)


def _console_metrics(s: Shield) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """The console's live figures, sign-ins and the alert job (all per node)."""
    monitor = getattr(s, "monitor", None)
    if monitor is not None:
        yield GaugeMetricFamily(
            "scrapeshield_records_served_distinct_minute",
            "Distinct personal records served (allowed) in the current minute",
            value=monitor.records_served(s.clock.now()),
        )
        signins = CounterMetricFamily(
            "scrapeshield_console_signins", "Console sign-in attempts, by outcome", labels=["outcome"]
        )
        for outcome in ("ok", "wrong", "slowed", "locked"):
            signins.add_metric([outcome], monitor.signins.get(outcome, 0))
        yield signins
    alerts = getattr(s, "alerts", None)
    if alerts is not None:
        yield CounterMetricFamily("scrapeshield_alerts_raised", "Alerts raised by the alert rules",
                                  value=alerts.raised)
        yield CounterMetricFamily("scrapeshield_alert_deliveries", "Alert deliveries that reached "
                                  "their channel", value=alerts.sent)
        yield CounterMetricFamily("scrapeshield_alert_delivery_failures", "Alert delivery attempts "
                                  "that failed (each is retried with backoff)", value=alerts.failures)


def _state_metrics(store: object) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    """The shared state backend's health: circuit, failures, decisions it could not answer."""
    from scrapeshield.state.resilient import ResilientStore

    if not isinstance(store, ResilientStore):
        return
    yield GaugeMetricFamily(
        "scrapeshield_state_backend_up",
        "1 while the shared state backend answers (circuit closed), else 0",
        value=1 if store.up else 0,
    )
    circuit = GaugeMetricFamily(
        "scrapeshield_state_circuit", "Circuit breaker state of the shared state backend",
        labels=["state"],
    )
    for state in ("closed", "open", "half-open"):
        circuit.add_metric([state], 1 if store.circuit == state else 0)
    yield circuit
    yield CounterMetricFamily(
        "scrapeshield_state_failures", "Calls to the shared state backend that failed or timed out",
        value=store.failures,
    )
    yield CounterMetricFamily(
        "scrapeshield_state_fallback_decisions",
        "Decisions answered from local in-memory limits while the backend was unavailable",
        value=store.fallback_decisions,
    )
    yield CounterMetricFamily(
        "scrapeshield_state_refused_decisions",
        "Decisions failed closed because the backend was unavailable (fail_mode: closed)",
        value=store.refused_decisions,
    )
    yield CounterMetricFamily(
        "scrapeshield_state_circuit_transitions", "Circuit breaker state changes",
        value=store.transitions,
    )
    round_trips = getattr(store.primary, "round_trips", None)
    if round_trips is not None:
        yield CounterMetricFamily(
            "scrapeshield_state_round_trips", "Round trips to the shared state backend",
            value=round_trips,
        )


def registry_for(shield: Shield) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ShieldCollector(shield))
    return registry
