"""Commands of the legal work: ``evidence``, ``breach``, ``incidents`` and ``report``.

Registered on the root group by ``scrapeshield.cli``; heavy imports happen inside commands so
that ``scrapeshield --help`` stays fast. Every expected failure is one line, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scrapeshield import cli as root
from scrapeshield.errors import ScrapeshieldError

if TYPE_CHECKING:
    from scrapeshield.db.store import Database
    from scrapeshield.settings import Settings


def parse_when(text: str, *, end_of_day: bool = False, hint: str | None = None) -> float:
    """Epoch seconds from ``2026-11-26``, ``2026-11-26T14:00[:00][Z|+01:00]`` or a number.
    A bare date as the end of a range means the end of that day."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date (use 2026-11-26 or 2026-11-26T14:00Z)",
                                 param_hint=hint) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end_of_day and len(text) == 10:
        moment += timedelta(days=1)
    return moment.timestamp()


def _open(data_dir: str | None, db_url: str | None, state: str,
          policy: str | None) -> tuple[Settings, Database]:
    from sqlalchemy.exc import SQLAlchemyError

    from scrapeshield.db.store import Database

    settings = root._settings(data_dir, db_url, "memory", policy)
    try:
        return settings, Database(settings.db_url)
    except (SQLAlchemyError, ImportError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(f"cannot open the database: {first}") from exc


def _guard(func: Callable[..., None]) -> Callable[..., None]:
    """Our own errors as one-line messages."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except ScrapeshieldError as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


def _policy(settings: Settings) -> Any:
    from scrapeshield.policy.loader import load_policy

    return load_policy(settings.policy_path)


# -- evidence ------------------------------------------------------------------------------------


@click.group()
def evidence() -> None:
    """Evidence packs for legal action: export, verify; the ledger they come from."""


@evidence.command("export")
@click.option("--campaign", "campaign_id", required=True, help="Campaign id (see: campaigns list).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The zip to write.")
@click.option("--terms", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Terms of service in force (default: the policy's legal.terms_file).")
@click.option("--robots", type=click.Path(dir_okay=False, exists=True), default=None,
              help="robots.txt in force (default: the policy's legal.robots_file).")
@root._store_options
@_guard
def evidence_export(campaign_id: str, out: str, terms: str | None, robots: str | None,
                    policy_path: str | None, data_dir: str | None, db_url: str | None, state: str) -> None:
    """Write a signed evidence pack (report HTML+PDF, ledger slice, manifest) about a campaign."""
    from scrapeshield.legal import keys
    from scrapeshield.legal.evidence import export_pack

    settings, db = _open(data_dir, db_url, state, policy_path)
    try:
        info = export_pack(db, campaign_id, Path(out), keys.load_or_create(settings.data_dir),
                           policy=_policy(settings), terms_path=Path(terms) if terms else None,
                           robots_path=Path(robots) if robots else None,
                           policy_dir=settings.policy_path.parent if settings.policy_path else None)
    finally:
        db.close()
    if not info["entries"]:
        click.echo("warning: the ledger has nothing about this campaign yet (windows reach it 5 to 6 "
                   "minutes after they begin)", err=True)
    click.echo(f"wrote {out}: campaign {campaign_id}, {info['entries']} ledger entries in full "
               f"(seq {info['first_seq']}-{info['last_seq']}), signed by key {info['key_id']}")


@evidence.command("verify")
@click.argument("pack", type=click.Path(dir_okay=False))
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The platform's public key (PEM). Default: the data directory's key if there is "
                   "one, else the key inside the pack (integrity only, not origin).")
@click.option("--data-dir", default=None, envvar="SCRAPESHIELD_DATA_DIR", help="Data directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_guard
def evidence_verify(pack: str, public_key: str | None, data_dir: str | None, as_json: bool) -> None:
    """Check every hash, the ledger chain and the signatures; exit 1 naming what was altered."""
    from scrapeshield.legal import keys
    from scrapeshield.legal.evidence import verify_pack

    key = None
    source = "the key inside the pack (proves integrity; check its id against the platform's key)"
    if public_key:
        key, source = keys.load_public(Path(public_key).read_bytes()), public_key
    elif data_dir and (Path(data_dir) / keys.KEY_FILE).exists():
        key = keys.load_private(Path(data_dir) / keys.KEY_FILE).public_key()
        source = f"the platform key in {data_dir}"
    result = verify_pack(Path(pack), key)
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "key_source": source}))
    elif result.ok:
        click.echo(f"{pack}: OK - campaign {result.campaign}, {result.entries} ledger entries, every "
                   f"hash, the chain and the signatures check out (key {result.key_id}, {source})")
    else:
        click.echo(f"{pack}: FAILED verification ({len(result.problems)} problems):", err=True)
        for problem in result.problems:
            click.echo(f"  - {problem}", err=True)
    if not result.ok:
        sys.exit(1)


@evidence.command("public-key")
@click.option("--data-dir", default=None, envvar="SCRAPESHIELD_DATA_DIR", help="Data directory.")
def evidence_public_key(data_dir: str | None) -> None:
    """Print the platform's public signing key (PEM), made on first use; give it to verifiers."""
    from scrapeshield.legal import keys

    settings = root._settings(data_dir, None, "memory", None)
    click.echo(keys.public_pem(keys.load_or_create(settings.data_dir)), nl=False)


@evidence.command("pseudonym")
@click.argument("address")
@click.option("--data-dir", default=None, envvar="SCRAPESHIELD_DATA_DIR", help="Data directory.")
def evidence_pseudonym(address: str, data_dir: str | None) -> None:
    """The pseudonyms of an IP address and its network, as events and packs show them."""
    import ipaddress

    from scrapeshield.events import Pseudonymiser

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise click.BadParameter(f"{address!r} is not an IP address") from None
    settings = root._settings(data_dir, None, "memory", None)
    pseudonymise = Pseudonymiser(settings.derived_key("pseudonym"))
    prefix = 24 if ip.version == 4 else 48
    network = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
    click.echo(f"{ip}\t{pseudonymise(str(ip))}\n{network}\t{pseudonymise(network)}")


@evidence.command("check-ledger")
@root._store_options
@_guard
def evidence_check_ledger(policy_path: str | None, data_dir: str | None, db_url: str | None,
                          state: str) -> None:
    """Check the whole stored ledger: every entry's hash, the chain and the signed checkpoints."""
    from scrapeshield.legal import keys
    from scrapeshield.legal.ledger import Ledger

    settings, db = _open(data_dir, db_url, state, policy_path)
    try:
        ledger = Ledger(db)
        problems = ledger.verify(keys.load_or_create(settings.data_dir).public_key())
        count, checkpoints = ledger.count(), len(ledger.checkpoints())
    finally:
        db.close()
    for problem in problems:
        click.echo(f"  - {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"ledger OK: {count} entries, {checkpoints} signed checkpoints")
