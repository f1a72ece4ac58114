"""When a notice is due: hours or business days from the moment the platform became aware.

A rules entry gives ``deadline_hours`` (hard), ``deadline_business_days`` (hard, Saturdays and
Sundays skipped; public holidays are not modelled), ``target_hours`` (guidance only) or
``assessment_deadline_hours`` (time to finish assessing). These bind the authority's notice
unless ``jurisdiction_extras`` says which audience they bind; the rest is "without undue delay".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scrapeshield.legal.document import when

HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Deadline:
    deadline: float | None = None  # hard legal deadline (epoch seconds)
    target: float | None = None  # guidance target
    assess_by: float | None = None  # assessment must be finished by
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"deadline": self.deadline, "target": self.target, "assess_by": self.assess_by,
                "deadline_text": self.text}


def add_business_days(start: float, days: int) -> float:
    moment = datetime.fromtimestamp(start, UTC)
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment.timestamp()


def deadline_for(entry: dict[str, Any], extras: dict[str, Any], audience: str, aware_at: float) -> Deadline:
    applies = audience in extras.get("deadline_applies_to", ["authority"])
    assess_hours = entry.get("assessment_deadline_hours")
    assess_by = aware_at + float(assess_hours) * HOUR if assess_hours else None
    hours = extras.get(f"{audience}_deadline_hours") or (entry.get("deadline_hours") if applies else None)
    days = entry.get("deadline_business_days") if applies else None
    target_hours = entry.get("target_hours") if applies else None
    parts: list[str] = []
    deadline = target = None
    if hours:
        deadline = aware_at + float(hours) * HOUR
        parts.append(f"within {number_of(hours)} hours of awareness, by {when(deadline)}")
    elif days:
        deadline = add_business_days(aware_at, int(days))
        parts.append(f"within {days} business days of awareness (weekends skipped, public holidays "
                     f"not modelled), by {when(deadline)}")
    else:
        parts.append("without undue delay / as soon as practicable (no fixed period)")
    if target_hours:
        target = aware_at + float(target_hours) * HOUR
        parts.append(f"guidance target {number_of(target_hours)} hours, by {when(target)}")
    if assess_by is not None:
        parts.append(f"the assessment must be finished by {when(assess_by)}")
    return Deadline(deadline, target, assess_by, "; ".join(parts))


def number_of(value: float) -> str:
    return f"{float(value):g}"
