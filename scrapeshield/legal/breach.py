"""Breach assessment (C8): from what was taken to who must be told, by when, and why.

An ``Incident`` says which personal records were served for real (record key → the routes that
served it; decoys and degraded, throttled or blocked answers are not in it). ``assess`` maps
records to people and where they live (``Subjects``), routes to data categories (the policy's
data map), and runs each jurisdiction's trigger tests (``Rules``) on the facts of its residents.
Deadlines run from ``aware_at``. Every outcome carries the test, the reasoning and the sources.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrapeshield.legal.deadlines import Deadline, deadline_for
from scrapeshield.legal.document import number, when
from scrapeshield.legal.rules import Rules, Test
from scrapeshield.legal.subjects import Subjects
from scrapeshield.policy.compiled import CompiledPolicy

AUDIENCES = ("authority", "individuals")


@dataclass(frozen=True, slots=True)
class DataMap:
    """Route name → the data categories of the personal fields it serves."""

    routes: Mapping[str, frozenset[str]]

    @classmethod
    def from_policy(cls, policy: CompiledPolicy | None = None) -> DataMap:
        if policy is None:
            from scrapeshield.policy.loader import load_policy

            policy = load_policy(None)
        field_map = policy.source.legal.data_map
        return cls({
            route.name: frozenset(field_map.get(f, "unclassified") for f in route.personal_fields)
            or frozenset({"handle"})
            for route in policy.source.routes
        })

    def categories(self, routes: frozenset[str]) -> set[str]:
        found: set[str] = set()
        for route in routes:
            found |= self.routes.get(route, frozenset({"unclassified"}))
        return found


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    title: str
    start: float
    end: float
    taken: Mapping[str, frozenset[str]]  # record key ("user:42") → routes that served it for real
    source: str = ""
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class Outcome:
    audience: str
    status: str  # required | voluntary | not-required | review
    test: str
    test_text: str
    met: bool | None
    reasoning: str
    deadline: Deadline

    def to_dict(self) -> dict[str, Any]:
        return {"audience": self.audience, "status": self.status, "test": self.test,
                "test_text": self.test_text, "met": self.met, "reasoning": self.reasoning,
                **self.deadline.to_dict()}


@dataclass(slots=True)
class Assessment:
    incident: Incident
    aware_at: float
    subjects: int
    records_taken: int
    records_unmatched: int
    categories: dict[str, int]  # category → subjects whose data of it was taken
    residence: dict[str, int]  # residence value → subjects
    jurisdictions: list[dict[str, Any]] = field(default_factory=list)
    not_modelled: dict[str, int] = field(default_factory=dict)
    notices: list[dict[str, str]] = field(default_factory=list)
    rules_path: str = ""
    rules_about: str = ""
    category_labels: dict[str, str] = field(default_factory=dict)

    @property
    def next_deadline(self) -> float | None:
        times = [o[k] for j in self.jurisdictions for o in (j["authority"], j["individuals"])
                 if o["status"] in ("required", "voluntary") for k in ("deadline", "target", "assess_by")
                 if o[k]]
        return min(times) if times else None

    def to_dict(self) -> dict[str, Any]:
        inc = self.incident
        return {
            "id": inc.id, "title": inc.title, "source": inc.source, "start": inc.start, "end": inc.end,
            "notes": list(inc.notes), "aware_at": self.aware_at, "subjects": self.subjects,
            "records_taken": self.records_taken, "records_unmatched": self.records_unmatched,
            "categories": self.categories, "category_labels": self.category_labels,
            "residence": self.residence,
            "jurisdictions": self.jurisdictions, "not_modelled": self.not_modelled,
            "notices": self.notices, "next_deadline": self.next_deadline,
            "rules": {"path": self.rules_path, "about": self.rules_about},
        }


def assess(incident: Incident, subjects: Subjects, rules: Rules, aware_at: float, *,
           data_map: DataMap | None = None) -> Assessment:
    """The assessment of one incident; pure (no I/O), so replay and the console share it."""
    from scrapeshield.legal.notices import draft_notices

    data_map = data_map or DataMap.from_policy()
    people: dict[str, tuple[str, set[str]]] = {}  # subject id → (residence, categories)
    unmatched = 0
    for record, routes in incident.taken.items():
        found = subjects.find(record)
        if found is None:
            unmatched += 1  # no such user (a probe of a non-existent id): nobody's data
            continue
        sid, residence = found
        _, cats = people.setdefault(sid, (residence, set()))
        cats |= data_map.categories(routes)
    categories: Counter[str] = Counter(c for _, cats in people.values() for c in cats)
    residents = Counter(r or "unknown" for r, _ in people.values())
    by_jurisdiction: dict[str, list[set[str]]] = defaultdict(list)
    not_modelled: Counter[str] = Counter()
    for res, cats in people.values():
        jid = rules.jurisdiction_of(res) if res else None
        if jid is None:
            not_modelled[res or "unknown"] += 1
        else:
            by_jurisdiction[jid].append(cats)
    result = Assessment(incident, aware_at, len(people), len(incident.taken), unmatched,
                        dict(categories.most_common()), dict(residents.most_common()),
                        not_modelled=dict(not_modelled.most_common()), rules_path=rules.display,
                        rules_about=rules.about, category_labels={c: rules.label(c) for c in categories})
    for jid in sorted(by_jurisdiction, key=lambda j: (-len(by_jurisdiction[j]), j)):
        result.jurisdictions.append(_jurisdiction(rules, jid, by_jurisdiction[jid], aware_at))
    result.notices = draft_notices(result, rules)
    return result


def _jurisdiction(rules: Rules, jid: str, people: list[set[str]], aware_at: float) -> dict[str, Any]:
    entry = rules.jurisdictions[jid]
    cats: Counter[str] = Counter(c for p in people for c in p)
    severity = max((rules.severity(c) for c in cats), default=0)
    facts = _Facts(len(people), severity, set(cats))
    out: dict[str, Any] = {
        "id": jid, "name": entry.get("name", jid), "law": entry.get("law", ""),
        "subjects": len(people), "categories": dict(cats.most_common()), "max_severity": severity,
        "mandatory": entry.get("mandatory"), "note": entry.get("note", ""),
        "sources": list(entry.get("sources") or []),
    }
    for audience in AUDIENCES:
        out[audience] = _outcome(rules, jid, audience, facts, aware_at).to_dict()
    return out


@dataclass(frozen=True, slots=True)
class _Facts:
    subjects: int
    severity: int
    categories: set[str]


def _outcome(rules: Rules, jid: str, audience: str, facts: _Facts, aware_at: float) -> Outcome:
    entry = rules.jurisdictions[jid]
    extras = rules.extras.get(jid, {})
    law = entry.get("law", jid)
    test: Test = rules.tests[(entry.get("trigger") or {})[audience]]
    notify = entry.get(f"notify_{audience}")
    who = "the authority" if audience == "authority" else "the individuals"
    none = Deadline()
    if test.review or notify is None:
        return Outcome(audience, "review", test.name, test.text, None,
                       f"{law}: the rule for notifying {who} is not verified ({entry.get('note', '')}); "
                       "a lawyer must decide.", none)
    if test.never or notify is False:
        return Outcome(audience, "not-required", test.name, test.text, False,
                       f"{law}: no duty to notify {who} - {test.reason or test.text}.", none)
    met, why = _evaluate(rules, test, facts)
    minimum = extras.get(f"{audience}_min_subjects")
    if met and minimum is not None and facts.subjects < int(minimum):
        met, why = False, f"{why}; but only {number(facts.subjects)} residents, below the {minimum} " \
                          f"this notice needs ({extras.get(f'{audience}_note', '')})"
    if not met:
        return Outcome(audience, "not-required", test.name, test.text, False,
                       f"{law}, test '{test.name}' ({test.text}): not met - {why}.", none)
    status = "required" if entry.get("mandatory") else "voluntary"
    deadline = deadline_for(entry, extras, audience, aware_at)
    duty = "must notify" if status == "required" else "may notify (voluntary regime)"
    reasoning = (f"{law}, test '{test.name}' ({test.text}): met - {why}. The platform {duty} {who}"
                 f"{': ' + deadline.text if deadline.text else ''}.")
    return Outcome(audience, status, test.name, test.text, True, reasoning, deadline)


def _evaluate(rules: Rules, test: Test, facts: _Facts) -> tuple[bool, str]:
    """Whether any condition of the test holds, and the facts that decided it, in words."""
    labels = ", ".join(sorted(facts.categories)) or "none"
    base = f"{number(facts.subjects)} residents' records taken, data categories: {labels} " \
           f"(highest severity {facts.severity})"
    for cond in test.any_of:
        listed = set(cond.categories_any)
        if listed and not listed & facts.categories:
            continue
        if facts.severity >= cond.min_severity and facts.subjects >= cond.min_subjects:
            parts = [f"severity {facts.severity} >= {cond.min_severity}",
                     f"{number(facts.subjects)} >= {number(cond.min_subjects)} people"]
            if listed:
                parts.insert(0, "listed categories: " + ", ".join(sorted(listed & facts.categories)))
            return True, f"{base}; condition {' and '.join(parts)} ({test.reason})"
    wanted = "; or ".join(
        " and ".join(filter(None, [
            f"categories {', '.join(c.categories_any)}" if c.categories_any else "",
            f"severity >= {c.min_severity}", f"at least {number(c.min_subjects)} people"]))
        for c in test.any_of) or "nothing"
    return False, f"{base}; the test needs {wanted}"


__all__ = ["Assessment", "DataMap", "Incident", "assess", "when"]
