"""``scrapeshield campaigns``: list, show and act on stored campaigns."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from scrapeshield.clock import SystemClock
from scrapeshield.db.store import Database
from scrapeshield.errors import ScrapeshieldError
from scrapeshield.settings import DATA_DIR_ENV, Settings


def _db_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option("--db", "db_url", default=None, help="SQLAlchemy URL of the database.")(func)
    func = click.option("--data-dir", default=None, envvar=DATA_DIR_ENV, help="Data directory.")(func)
    return func


@contextmanager
def _database(data_dir: str | None, db_url: str | None) -> Iterator[Database]:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        settings = Settings.resolve(data_dir, db_url, "memory", None)
        db = Database(settings.db_url)
    except ScrapeshieldError as exc:
        raise click.UsageError(str(exc)) from exc
    except (SQLAlchemyError, ImportError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(f"cannot open the database: {first}") from exc
    try:
        yield db
    finally:
        db.close()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def campaigns() -> None:
    """Campaigns: clients grouped by a shared fingerprint, subnet, pace or target list."""


@campaigns.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--min-score", default=0.0, show_default=True, type=click.FloatRange(0, 100))
@_db_options
def list_command(as_json: bool, limit: int, min_score: float, data_dir: str | None,
                 db_url: str | None) -> None:
    """Stored campaigns, strongest first."""
    from scrapeshield.campaigns.store import list_campaigns

    with _database(data_dir, db_url) as db:
        found = list_campaigns(db, limit=limit, min_score=min_score)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no campaigns stored yet (the grouping job runs every minute on a serving shield)")
        return
    for c in found:
        click.echo(f"{c['id']}  score {c['score']:>5.1f}  {c['kind']:<11} clients {c['clients']:>6,}  "
                   f"records {c['records']:>7,}  last {_when(c['last_seen'])}  {c['status']}"
                   f"{' ' + c['action'] if c['action'] else ''}  {c['label']}")


@campaigns.command("show")
@click.argument("cid")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--members", default=20, show_default=True, type=click.IntRange(0, 100_000))
@_db_options
def show_command(cid: str, as_json: bool, members: int, data_dir: str | None, db_url: str | None) -> None:
    """One campaign: score, reasons, busiest members, latest events."""
    from scrapeshield.campaigns.store import campaign_events, campaign_members, get_campaign

    with _database(data_dir, db_url) as db:
        found = get_campaign(db, cid)
        if found is None:
            click.echo(f"no campaign {cid!r}", err=True)
            sys.exit(1)
        people = campaign_members(db, cid, limit=members)
        events = campaign_events(db, cid, limit=10)
    if as_json:
        click.echo(json.dumps({**found, "members": people, "events": events}, indent=2))
        return
    click.echo(f"{found['id']}: {found['label']}")
    click.echo(f"  kind {found['kind']}, score {found['score']:.1f}, {found['clients']:,} clients, "
               f"{found['requests']:,} requests, {found['records']:,} records")
    click.echo(f"  seen {_when(found['first_seen'])} .. {_when(found['last_seen'])}, status "
               f"{found['status']}{', action ' + found['action'] if found['action'] else ''}")
    for reason in found["reasons"]:
        click.echo(f"  - {reason}")
    for m in people:
        click.echo(f"  member {m['client']}: {m['requests']} requests, {m['records']} records"
                   f"{', accounts ' + ', '.join(m['accounts']) if m['accounts'] else ''}")


@campaigns.command("act")
@click.argument("cid")
@click.option("--action", default="block", show_default=True, type=click.Choice(["block", "challenge",
                                                                                  "allow"]))
@click.option("--ttl", default=86400.0, show_default=True, type=click.FloatRange(1, 365 * 86400),
              help="Seconds until the entries expire.")
@click.option("--reason", required=True, help="Why (kept with every entry and in the audit trail).")
@click.option("--actor", default="cli", show_default=True, help="Who acts (for the audit trail).")
@_db_options
def act_command(cid: str, action: str, ttl: float, reason: str, actor: str, data_dir: str | None,
                db_url: str | None) -> None:
    """Put a whole campaign on a list: its fingerprint or subnet, its accounts, its IPs when kept.

    A serving shield loads the new entries within a minute (its campaign job)."""
    from scrapeshield.campaigns.act import CampaignActionError, act_on_campaign

    with _database(data_dir, db_url) as db:
        try:
            result = act_on_campaign(db, cid, action=action, ttl=ttl, reason=reason, actor=actor,
                                     now=SystemClock().now())
        except CampaignActionError as exc:
            raise click.ClickException(str(exc)) from exc
    kinds = ", ".join(sorted({e.kind for e in result.entries}))
    click.echo(f"{cid}: {len(result.entries)} {action} entries ({kinds}) until "
               f"{_when(result.entries[0].expires)}"
               + (f"; {result.skipped_pseudonyms} members known only by pseudonym"
                  if result.skipped_pseudonyms else ""))
