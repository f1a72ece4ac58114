"""Draft notices (to the authority, to individuals) from the templates in ``notices/``, one per
jurisdiction and audience where notifying is required or recommended. Drafts, for a lawyer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from scrapeshield.legal.document import number, when
from scrapeshield.legal.rules import Rules

if TYPE_CHECKING:
    from scrapeshield.legal.breach import Assessment

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "notices"),
                          autoescape=False, undefined=jinja2.StrictUndefined,  # plain text
                          keep_trailing_newline=True)


def draft_notices(assessment: Assessment, rules: Rules) -> list[dict[str, str]]:
    drafts: list[dict[str, str]] = []
    for j in assessment.jurisdictions:
        for audience in ("authority", "individuals"):
            outcome = j[audience]
            if outcome["status"] not in ("required", "voluntary"):
                continue
            text = _ENV.get_template(f"{audience}.txt.j2").render(
                a=assessment, j=j, o=outcome, i=j["individuals"], when=when, number=number,
                label=rules.label)
            drafts.append({"jurisdiction": j["id"], "audience": audience, "text": text})
    return drafts
