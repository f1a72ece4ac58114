"""Breach-notification rules as data: the packaged ``data/breach-rules.yaml`` (seeded from public
sources, each entry with its sources) or an operator's copy (``--rules FILE``). Loading checks
the shape and names every problem, so a typo in an edited file is an error, not a wrong answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scrapeshield.errors import ScrapeshieldError

PACKAGED = Path(__file__).parent / "data" / "breach-rules.yaml"


class RulesError(ScrapeshieldError):
    """The rules file is missing, not YAML, or has the wrong shape."""


@dataclass(frozen=True, slots=True)
class Condition:
    min_severity: int = 0
    min_subjects: int = 1
    categories_any: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Test:
    name: str
    text: str  # the legal wording (trigger_tests)
    reason: str  # why the model reads it this way
    any_of: tuple[Condition, ...] = ()
    never: bool = False
    review: bool = False


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    severity: int
    label: str


@dataclass(frozen=True, slots=True)
class Rules:
    path: Path
    about: str
    jurisdictions: dict[str, dict[str, Any]]  # id → entry as written
    tests: dict[str, Test]
    categories: dict[str, Category]
    extras: dict[str, dict[str, Any]]
    residence: dict[str, str]  # upper-cased residence value → jurisdiction id
    expectations: list[dict[str, Any]]
    statements: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path | str | None = None) -> Rules:
        where = Path(path) if path else PACKAGED
        try:
            raw = yaml.safe_load(where.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RulesError(f"cannot read rules file {where}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise RulesError(f"rules file {where} is not valid YAML: {exc}") from exc
        return _parse(where, raw)

    @property
    def display(self) -> str:
        """Where the rules came from, as a reader should see it."""
        if self.path == PACKAGED:
            return "scrapeshield/legal/data/breach-rules.yaml (packaged with scrapeshield)"
        return str(self.path)

    def jurisdiction_of(self, residence: str) -> str | None:
        return self.residence.get(residence.strip().upper())

    def severity(self, category: str) -> int:
        known = self.categories.get(category) or self.categories.get("unclassified")
        return known.severity if known else 1

    def label(self, category: str) -> str:
        known = self.categories.get(category)
        return known.label if known else category


def _parse(where: Path, raw: Any) -> Rules:
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: the top level must be a mapping")
    model = raw.get("assessment")
    if not isinstance(model, dict):
        raise RulesError(f"{where}: an 'assessment' section is needed (see the packaged rules file)")
    wording = raw.get("trigger_tests") or {}
    tests: dict[str, Test] = {}
    for name, spec in (model.get("tests") or {}).items():
        if not isinstance(spec, dict):
            problems.append(f"assessment.tests.{name}: must be a mapping")
            continue
        conditions = []
        for i, cond in enumerate(spec.get("any_of") or []):
            unknown = set(cond) - {"min_severity", "min_subjects", "categories_any"}
            if unknown:
                problems.append(f"assessment.tests.{name}.any_of[{i}]: unknown keys {sorted(unknown)}")
                continue
            conditions.append(Condition(int(cond.get("min_severity", 0)), int(cond.get("min_subjects", 1)),
                                        tuple(cond.get("categories_any") or ())))
        tests[name] = Test(name, str(wording.get(name, name)), str(spec.get("reason", "")),
                           tuple(conditions), bool(spec.get("never")), bool(spec.get("review")))
    categories = {
        str(name): Category(str(name), int(spec.get("severity", 1)), str(spec.get("label", name)))
        for name, spec in (model.get("categories") or {}).items()
    }
    jurisdictions: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(raw.get("jurisdictions") or []):
        jid = str(entry.get("id", ""))
        if not jid:
            problems.append(f"jurisdictions[{i}]: an id is needed")
            continue
        for who in ("authority", "individuals"):
            test = (entry.get("trigger") or {}).get(who)
            if test not in tests:
                problems.append(f"jurisdictions[{i}] ({jid}): trigger.{who} {test!r} is not in "
                                "assessment.tests")
        if not entry.get("sources"):
            problems.append(f"jurisdictions[{i}] ({jid}): sources are needed")
        jurisdictions[jid] = entry
    residence = {str(k).upper(): str(v) for k, v in (model.get("residence") or {}).items()}
    for value, jid in residence.items():
        if jid not in jurisdictions:
            problems.append(f"assessment.residence.{value}: unknown jurisdiction {jid!r}")
    if problems:
        raise RulesError(f"{where}: " + "; ".join(problems))
    return Rules(where, str(raw.get("about", "")), jurisdictions, tests, categories,
                 {str(k): dict(v) for k, v in (model.get("jurisdiction_extras") or {}).items()},
                 residence, list(raw.get("expectations") or []), list(raw.get("statements") or []))
