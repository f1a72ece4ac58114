"""A breach assessment as a document (HTML, PDF), JSON and draft notice files."""

from __future__ import annotations

import json
from pathlib import Path

from scrapeshield.legal.breach import Assessment
from scrapeshield.legal.document import Document, Section, Table, number, to_html, to_pdf, when
from scrapeshield.legal.errors import LegalError

STATUS = {"required": "REQUIRED", "voluntary": "recommended (voluntary)", "not-required": "not required",
          "review": "legal review"}


def assessment_document(result: Assessment) -> Document:
    d = result.to_dict()
    doc = Document(
        title=f"Breach assessment: {d['title']}",
        subtitle=f"{d['source']}; activity {when(d['start'])} - {when(d['end'])}; aware since "
                 f"{when(d['aware_at'])}",
        figures=[("Data subjects affected", number(d["subjects"])),
                 ("Real records taken", number(d["records_taken"])),
                 ("Jurisdictions assessed", number(len(d["jurisdictions"]))),
                 ("Notifications required", number(sum(
                     j[a]["status"] == "required" for j in d["jurisdictions"]
                     for a in ("authority", "individuals")))),
                 ("Next deadline", when(d["next_deadline"]) or "none fixed")],
        footer=f"Rules: {d['rules']['path']}. {d['rules']['about']}",
    )
    doc.sections.append(Section("Facts", [
        "Records count as taken only when the real record was served (decision allow); decoys, "
        "degraded, throttled, challenged and blocked answers are excluded. "
        f"{number(d['records_unmatched'])} requested records matched no user and are not counted.",
        *d["notes"]], tables=[
        Table(["Data category", "Subjects"], [[f"{k}: {d['category_labels'].get(k, k)}", number(v)]
                                              for k, v in d["categories"].items()]),
        Table(["Residence", "Subjects"], [[k, number(v)] for k, v in d["residence"].items()]),
    ]))
    rows = []
    for j in d["jurisdictions"]:
        for audience in ("authority", "individuals"):
            o = j[audience]
            rows.append([f"{j['name']} ({j['law']})", audience, STATUS[o["status"]], number(j["subjects"]),
                         when(o["deadline"]) or when(o["target"]) or "-"])
    doc.sections.append(Section("Outcome per jurisdiction", tables=[
        Table(["Jurisdiction", "Notify", "Outcome", "Residents", "Deadline"], rows)]))
    for j in d["jurisdictions"]:
        doc.sections.append(Section(f"{j['name']}: the test applied and the reasoning", [
            *(f"{a.capitalize()}: {STATUS[j[a]['status']]}. {j[a]['reasoning']}"
              for a in ("authority", "individuals")),
            *([f"Note: {j['note']}"] if j["note"] else []),
            "Sources: " + "; ".join(j["sources"]),
        ]))
    if d["not_modelled"]:
        doc.sections.append(Section("Residents of jurisdictions the rules do not model", [
            "Assess these by hand: " + ", ".join(f"{k}: {number(v)}" for k, v in d["not_modelled"].items())]))
    doc.sections.append(Section("Draft notices", ["Drafts for review by counsel before sending."],
                                texts=[n["text"] for n in d["notices"]]))
    return doc


def write_assessment(result: Assessment, out_dir: Path) -> list[Path]:
    try:
        (out_dir / "notices").mkdir(parents=True, exist_ok=True)
        doc = assessment_document(result)
        written = []
        for name, data in (("assessment.json", json.dumps(result.to_dict(), indent=1).encode()),
                           ("assessment.html", to_html(doc).encode()), ("assessment.pdf", to_pdf(doc))):
            (out_dir / name).write_bytes(data)
            written.append(out_dir / name)
        for notice in result.notices:
            path = out_dir / "notices" / f"{notice['jurisdiction']}-{notice['audience']}.txt"
            path.write_text(notice["text"], encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise LegalError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    return written
