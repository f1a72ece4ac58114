"""One plain document model for every legal report, rendered twice: HTML (Jinja2) and PDF
(ReportLab). The evidence report, the breach assessment and the compliance report build a
``Document``; the renderers never know which report they draw, so HTML and PDF say the same."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import jinja2

_TEMPLATES = Path(__file__).parent / "templates"
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(slots=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(slots=True)
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # preformatted blocks (terms, robots.txt, notices)


@dataclass(slots=True)
class Document:
    title: str
    subtitle: str
    figures: list[tuple[str, str]] = field(default_factory=list)  # key figures: (label, value)
    sections: list[Section] = field(default_factory=list)
    footer: str = ""


def when(ts: float | None) -> str:
    """An epoch time as a readable UTC date-time ("" for none)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def to_html(doc: Document) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("document.html").render(doc=doc)


def to_pdf(doc: Document) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        LongTable,
        Paragraph,
        Preformatted,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )

    font, bold = _fonts()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=font, fontSize=9, leading=12)
    cell = ParagraphStyle("cell", parent=body, fontSize=8, leading=10)
    head = ParagraphStyle("head", parent=cell, fontName=bold)
    h1 = ParagraphStyle("h1", parent=styles["Title"], fontName=bold, fontSize=18)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontName=bold, fontSize=13)
    figure = ParagraphStyle("figure", parent=body, fontName=bold, fontSize=12, leading=16)
    mono = ParagraphStyle("mono", parent=body, fontName=font, fontSize=7, leading=9)
    story: list[object] = [Paragraph(escape(doc.title), h1), Paragraph(escape(doc.subtitle), body)]
    if doc.figures:
        rows = [[Paragraph(escape(label), figure), Paragraph(escape(value), figure)]
                for label, value in doc.figures]
        fig_table = LongTable(rows, colWidths=[95 * mm, 75 * mm])
        fig_table.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.5, colors.grey),
                                       ("BACKGROUND", (0, 0), (-1, -1), colors.whitesmoke)]))
        story += [Spacer(1, 4 * mm), fig_table]
    for section in doc.sections:
        story.append(Paragraph(escape(section.title), h2))
        story += [Paragraph(escape(p), body) for p in section.paragraphs]
        for table in section.tables:
            if table.caption:
                story.append(Paragraph(escape(table.caption), body))
            data = [[Paragraph(escape(c), head) for c in table.columns]]
            data += [[Paragraph(escape(str(v)), cell) for v in row] for row in table.rows]
            width = 170 * mm / max(len(table.columns), 1)
            grid = LongTable(data, colWidths=[width] * len(table.columns), repeatRows=1)
            grid.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]))
            story += [grid, Spacer(1, 3 * mm)]
        for block in section.texts:
            story.append(Preformatted(_wrap(block, 110), mono))
    if doc.footer:
        story += [Spacer(1, 6 * mm), Paragraph(escape(doc.footer), cell)]
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, title=doc.title, leftMargin=20 * mm, rightMargin=20 * mm,
                      topMargin=18 * mm, bottomMargin=18 * mm).build(story)  # type: ignore[arg-type]
    return out.getvalue()


def _wrap(text: str, width: int) -> str:
    lines: list[str] = []
    for line in text.splitlines():
        while len(line) > width:
            lines.append(line[:width])
            line = line[width:]
        lines.append(line)
    return "\n".join(lines)


_registered: tuple[str, str] | None = None


def _fonts() -> tuple[str, str]:
    """DejaVu (wide Unicode coverage) when the system has it, else the built-in Helvetica."""
    global _registered
    if _registered is None:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        regular, heavy = _FONT_DIR / "DejaVuSans.ttf", _FONT_DIR / "DejaVuSans-Bold.ttf"
        if regular.exists() and heavy.exists():
            pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(heavy)))
            _registered = ("DejaVuSans", "DejaVuSans-Bold")
        else:
            _registered = ("Helvetica", "Helvetica-Bold")
    return _registered
