"""Prometheus metrics, read at scrape time so the request path only bumps plain counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from scrapeshield.types import Action, Decision, RequestContext

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield


class DecisionCounter:
    """A decision listener: counts per action, and personal records served."""

    def __init__(self) -> None:
        self.by_action: dict[Action, int] = dict.fromkeys(Action, 0)
        self.records_served = 0

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        self.by_action[decision.action] += 1
        if ctx.record and decision.action is Action.ALLOW:
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
            "scrapeshield_events_dropped", "Events dropped because the queue was full",
            value=s.recorder.dropped,
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


def registry_for(shield: Shield) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ShieldCollector(shield))
    return registry
