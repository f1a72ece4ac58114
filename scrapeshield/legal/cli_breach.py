"""Commands ``breach assess``, ``incidents`` and ``report`` (see ``scrapeshield.legal.cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scrapeshield import cli as root
from scrapeshield.legal.cli import _guard, _open, _policy, parse_when


@click.group()
def breach() -> None:
    """Breach assessment: who must be told, by when, and why (rules: breach-rules.yaml)."""


@breach.command("assess")
@click.option("--campaign", "campaign_id", default=None, help="Assess a campaign...")
@click.option("--from", "start", default=None, help="...or a time range: start (2026-11-26[T14:00Z]).")
@click.option("--to", "end", default=None, help="End of the time range (a bare date: the whole day).")
@click.option("--subjects", "subjects_file", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The platform's users as JSON lines (e.g. demo --export-dataset).")
@click.option("--residence-field", default="country", show_default=True,
              help="Field of the user file that says where the person lives.")
@click.option("--rules", "rules_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Rules file (default: the packaged breach-rules.yaml).")
@click.option("--aware-at", default=None, help="When the platform became aware (default: now).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Directory for the assessment (HTML, PDF, JSON) and the draft notices.")
@click.option("--save/--no-save", default=True, show_default=True,
              help="Keep the assessment on record (incidents list, console countdowns).")
@click.option("--json", "as_json", is_flag=True, help="Print the assessment as JSON.")
@root._store_options
@_guard
def breach_assess(campaign_id: str | None, start: str | None, end: str | None, subjects_file: str,
                  residence_field: str, rules_file: str | None, aware_at: str | None, out: str | None,
                  save: bool, as_json: bool, policy_path: str | None, data_dir: str | None,
                  db_url: str | None, state: str) -> None:
    """Assess an incident (a campaign or a time range) against every jurisdiction's rules."""
    from scrapeshield.clock import SystemClock
    from scrapeshield.legal.breach import DataMap, assess
    from scrapeshield.legal.incident import incident_from_campaign, incident_from_range
    from scrapeshield.legal.incidents import save_incident
    from scrapeshield.legal.rules import Rules
    from scrapeshield.legal.subjects import Subjects

    if bool(campaign_id) == bool(start or end) or (not campaign_id and not (start and end)):
        raise click.UsageError("give either --campaign ID or both --from and --to")
    now = SystemClock().now()
    rules = Rules.load(rules_file)
    subjects = Subjects.load(subjects_file, residence_field)
    settings, db = _open(data_dir, db_url, state, policy_path)
    try:
        incident = (incident_from_campaign(db, campaign_id) if campaign_id else
                    incident_from_range(db, parse_when(start or "", hint="--from"),
                                        parse_when(end or "", end_of_day=True, hint="--to")))
        result = assess(incident, subjects, rules,
                        parse_when(aware_at, hint="--aware-at") if aware_at else now,
                        data_map=DataMap.from_policy(_policy(settings)))
        if save:
            save_incident(db, result, "cli", now)
    finally:
        db.close()
    data = result.to_dict()
    if out:
        from scrapeshield.legal.assessment_report import write_assessment

        for path in write_assessment(result, Path(out)):
            click.echo(f"wrote {path}", err=True)
    if subjects.bad_lines:
        click.echo(f"warning: {len(subjects.bad_lines)} unreadable lines in {subjects_file} (first: "
                   f"{subjects.bad_lines[:5]})", err=True)
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    click.echo(f"{data['title']}: {data['subjects']} data subjects, {data['records_taken']} real records "
               f"taken ({data['records_unmatched']} matched no user)")
    click.echo("categories: " + ", ".join(f"{k} {v}" for k, v in data["categories"].items()))
    for j in data["jurisdictions"]:
        for audience in ("authority", "individuals"):
            o = j[audience]
            click.echo(f"  {j['id']:<6} {audience:<11} {o['status']:<12} {j['subjects']:>7} people  "
                       f"{o['deadline_text'] if o['status'] in ('required', 'voluntary') else ''}")
    if data["not_modelled"]:
        click.echo("not modelled (review by hand): " +
                   ", ".join(f"{k} {v}" for k, v in data["not_modelled"].items()))


@click.command("incidents")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@root._store_options
@_guard
def incidents(as_json: bool, policy_path: str | None, data_dir: str | None, db_url: str | None,
              state: str) -> None:
    """Breach assessments on record, with the next deadline and the time left."""
    from scrapeshield.clock import SystemClock
    from scrapeshield.legal.document import when
    from scrapeshield.legal.incidents import list_incidents

    _, db = _open(data_dir, db_url, state, policy_path)
    try:
        items = list_incidents(db, SystemClock().now())
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(items, indent=1))
        return
    for item in items:
        left = item["seconds_left"]
        countdown = "no fixed deadline" if left is None else (
            f"{left / 3600:.1f} h left" if left > 0 else f"overdue by {-left / 3600:.1f} h")
        click.echo(f"{item['id']}  {item['source']}  {item['subjects']} subjects  next deadline "
                   f"{when(item['next_deadline']) or '-'} ({countdown})")


@click.command("report")
@click.option("--from", "start", required=True, help="Start of the period (2026-11-01).")
@click.option("--to", "end", required=True, help="End of the period (a bare date: the whole day).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Path of the report without extension, or ending in .html/.pdf: both are written.")
@click.option("--rules", "rules_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Rules file with the regulators' expectations (default: the packaged one).")
@root._store_options
@_guard
def report(start: str, end: str, out: str, rules_file: str | None, policy_path: str | None,
           data_dir: str | None, db_url: str | None, state: str) -> None:
    """Compliance report: each regulator expectation, the measure in place, its measured effect."""
    from scrapeshield.legal.report import build_report, write_report
    from scrapeshield.legal.rules import Rules

    t0, t1 = parse_when(start, hint="--from"), parse_when(end, end_of_day=True, hint="--to")
    if t1 <= t0:
        raise click.UsageError("--to must be after --from")
    settings, db = _open(data_dir, db_url, state, policy_path)
    try:
        facts = build_report(db, t0, t1, rules=Rules.load(rules_file), policy=_policy(settings))
    finally:
        db.close()
    for path in write_report(facts, Path(out)):
        click.echo(f"wrote {path}")
