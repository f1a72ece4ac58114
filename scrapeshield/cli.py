"""The command line: ``scrapeshield`` and ``python -m scrapeshield``."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

from scrapeshield import _native
from scrapeshield.errors import PolicyError, ScrapeshieldError
from scrapeshield.settings import DATA_DIR_ENV, Settings

try:
    __version__ = version("scrapeshield")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"


def _store_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option("--state", default="memory", show_default=True, envvar="SCRAPESHIELD_STATE",
                        help="Counter state: 'memory', or redis://host:6379/0 (valkey://…; a Cluster: "
                             "redis+cluster://host:7000) shared by many nodes "
                             "(env SCRAPESHIELD_STATE).")(func)
    func = click.option("--db", "db_url", default=None,
                        help="SQLAlchemy URL of the database (default: SQLite in the data dir).")(func)
    func = click.option("--data-dir", default=None, envvar=DATA_DIR_ENV,
                        help=f"Data directory (env {DATA_DIR_ENV}; default ./scrapeshield-data).")(func)
    func = click.option("--policy", "policy_path", default=None, type=click.Path(dir_okay=False),
                        help="Policy YAML file (default: the embedded policy).")(func)
    return func


def _serve_options(func: click.decorators.FC, port: int = 8000) -> click.decorators.FC:
    func = click.option("--admin-port", default=8001, show_default=True, type=click.IntRange(0, 65535),
                        help="Port of the admin API and /metrics (always on 127.0.0.1).")(func)
    func = click.option("--port", default=port, show_default=True, type=click.IntRange(0, 65535),
                        help="Public port.")(func)
    func = click.option("--host", default="127.0.0.1", show_default=True, help="Public address.")(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# The request path in use goes with the version: operators must see whether the compiled
# build runs (docs/compiled.md), or why not.
@click.version_option(__version__, prog_name="scrapeshield",
                      message=f"%(prog)s, version %(version)s (request path: {_native.status()})")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="SCRAPESHIELD_LOG_FORMAT",
              help="Log lines as text or as one JSON object each (env SCRAPESHIELD_LOG_FORMAT).")
def main(log_format: str) -> None:
    """scrapeshield: protects personal data on social platforms from mass scraping."""
    from scrapeshield.logjson import configure

    configure(log_format)
    # httpx logs every proxied request (full URL, query included) at INFO: one line per request.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _settings(data_dir: str | None, db_url: str | None, state: str, policy: str | None) -> Settings:
    try:
        return Settings.resolve(data_dir, db_url, state, policy)
    except ScrapeshieldError as exc:
        raise click.UsageError(str(exc)) from exc


def _shield(settings: Settings):  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import SQLAlchemyError

    from scrapeshield.runtime import Shield

    try:
        return Shield(settings)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    except (SQLAlchemyError, ImportError) as exc:  # a bad --db URL, a missing driver, no server
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise click.ClickException(f"cannot open the database: {first}") from exc
    except ScrapeshieldError as exc:  # e.g. an unreadable evidence signing key in the data dir
        raise click.ClickException(str(exc)) from exc


@main.command()
@_serve_options
@_store_options
@click.option("--users", default=10_000, show_default=True, type=click.IntRange(1, 2_000_000),
              help="Synthetic users in the demo population.")
@click.option("--seed", default=1, show_default=True, type=int, help="Population seed.")
@click.option("--export-dataset", type=click.Path(dir_okay=False), default=None,
              help="Write the ground-truth users as JSON lines to this file and exit.")
def demo(host: str, port: int, admin_port: int, policy_path: str | None, data_dir: str | None,
         db_url: str | None, state: str, users: int, seed: int, export_dataset: str | None) -> None:
    """Run the demo social network behind the shield."""
    from scrapeshield.demo.app import create_demo_app
    from scrapeshield.demo.population import Population
    from scrapeshield.demo.population import export_dataset as export

    population = Population.generate(users, seed)
    if export_dataset:
        try:
            export(population, Path(export_dataset))
        except OSError as exc:
            raise click.ClickException(f"cannot write {export_dataset}: {exc.strerror or exc}") from exc
        click.echo(f"wrote {len(population)} users to {export_dataset}")
        return
    settings = _settings(data_dir, db_url, state, policy_path)
    shield = _shield(settings)
    _run(shield, create_demo_app(population), host, port, admin_port, settings,
         f"demo social network ({users} users, seed {seed})")


@main.command()
@click.option("--upstream", required=True, help="URL of the application to protect.")
@_serve_options
@_store_options
def proxy(upstream: str, host: str, port: int, admin_port: int, policy_path: str | None,
          data_dir: str | None, db_url: str | None, state: str) -> None:
    """Run a reverse proxy that protects any web application."""
    from scrapeshield.hosts.proxy import ReverseProxy

    try:
        app = ReverseProxy(upstream)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    settings = _settings(data_dir, db_url, state, policy_path)
    shield = _shield(settings)
    # Forwarding headers are passed on only from the policy's trusted proxies (as reloaded).
    app.trusts = lambda peer: shield.engine.contexts.is_trusted(peer)
    _run(shield, app, host, port, admin_port, settings, f"proxy to {upstream}")


def _run(shield, app, host, port, admin_port, settings: Settings, what: str,  # type: ignore[no-untyped-def]
         protect: bool = True, public_socket=None, unix: str | None = None) -> None:
    """Serve ``app`` (behind the shield when ``protect``) and the admin API, until a signal."""
    from scrapeshield.admin.api import create_admin_app
    from scrapeshield.hosts.asgi import ScrapeshieldMiddleware
    from scrapeshield.serve import serve_pair

    public = ScrapeshieldMiddleware(app, shield) if protect else app
    admin = create_admin_app(shield, settings.admin_token())
    from scrapeshield.console.users import ADMIN_PASSWORD_ENV, Users

    generated = Users(shield.db.engine).ensure_first_admin(shield.clock.now())

    label = "site: " if protect else "asked:"

    def ready() -> None:
        click.echo(f"scrapeshield {__version__}: {what}")
        if unix:
            click.echo(f"  {label} unix:{unix}")
        else:
            click.echo(f"  {label} http://{f'[{host}]' if ':' in host else host}:{port}/")
        click.echo(f"  admin: http://127.0.0.1:{admin_port}/  (bearer token in "
                   f"{settings.admin_token_path} or $SCRAPESHIELD_ADMIN_TOKEN)")
        click.echo(f"  console: http://127.0.0.1:{admin_port}/console/")
        if generated:  # printed this once only; the database keeps an argon2 hash
            click.echo(f"    first sign-in: user admin, password {generated} (shown once; change it "
                       "with `scrapeshield users passwd admin`)")
        elif os.environ.get(ADMIN_PASSWORD_ENV):
            click.echo(f"    user admin's first password came from ${ADMIN_PASSWORD_ENV}")
        click.echo(f"  data:  {settings.data_dir}")
        sys.stdout.flush()

    try:
        serve_pair(shield, public, admin, host, port, "127.0.0.1", admin_port, ready, public_socket)
    except ScrapeshieldError as exc:  # e.g. a port already in use
        raise click.ClickException(str(exc)) from exc


@main.command("serve-decisions")
@functools.partial(_serve_options, port=8002)
@_store_options
@click.option("--challenge-page", default=None, type=click.Path(dir_okay=False),
              help="Write the challenge page nginx fills in itself to this file at start "
                   "(deploy/nginx/scrapeshield.conf serves it).")
@click.option("--unix", default=None, type=click.Path(dir_okay=False),
              help="Listen on this Unix socket instead of --host/--port (cheaper for a proxy on "
                   "the same machine; its connections count as 127.0.0.1 for trusted_proxies).")
def serve_decisions(host: str, port: int, admin_port: int, policy_path: str | None,
                    data_dir: str | None, db_url: str | None, state: str,
                    challenge_page: str | None, unix: str | None) -> None:
    """Answer nginx auth_request, Caddy forward_auth and Traefik ForwardAuth (see deploy/).

    Only the proxy may reach --host/--port (or --unix): it is believed about each request's URI."""
    from scrapeshield.hosts.auth_request import MAX_VERIFY_BODY, DecisionService
    from scrapeshield.hosts.edge_page import write_template
    from scrapeshield.hosts.edge_server import EdgeServer, bind_unix

    if challenge_page is not None:
        try:
            write_template(challenge_page)
        except OSError as exc:
            raise click.ClickException(f"cannot write the challenge page {challenge_page}: {exc}") from exc
    settings = _settings(data_dir, db_url, state, policy_path)
    shield = _shield(settings)
    if not shield.policy.trusted_proxies:
        click.echo("warning: the policy's trusted_proxies is empty, so the proxy's X-Forwarded-For "
                   "is ignored and every request counts as coming from the proxy; list the proxy's "
                   "address (deploy/policy-edge.yaml trusts 127.0.0.1)", err=True)
    public_socket = None
    if unix:
        try:
            public_socket = bind_unix(unix)
        except OSError as exc:
            shield.close()
            raise click.ClickException(f"cannot listen on {unix}: {exc.strerror or exc}") from exc
    service = DecisionService(shield)
    _run(shield, EdgeServer(service.answer, MAX_VERIFY_BODY), host, port, admin_port, settings,
         "decision service for edge proxies", protect=False, public_socket=public_socket, unix=unix)


@main.group()
def policy() -> None:
    """Check and print policies."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def policy_check(file: str, as_json: bool) -> None:
    """Validate a policy file; exit 1 and name every bad key and line if it is invalid."""
    from scrapeshield.policy.loader import load_policy

    try:
        compiled = load_policy(file)
    except PolicyError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "problems": exc.problems}))
        else:
            click.echo(str(exc), err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"ok": True}))
    else:
        click.echo(f"{file}: ok ({len(compiled.routes)} routes, {len(compiled.limits)} limits, "
                   f"{len(compiled.rules)} rules)")


@policy.command("default")
def policy_default() -> None:
    """Print the embedded default policy (a starting point for your own)."""
    from scrapeshield.policy.loader import default_policy_text

    click.echo(default_policy_text(), nl=False)


@main.group()
def canary() -> None:
    """Trace decoy canaries (fake e-mails and phone numbers served to scrapers)."""


@canary.command("lookup")
@click.argument("value")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--db", "db_url", default=None, help="SQLAlchemy URL of the database.")
@click.option("--data-dir", default=None, envvar=DATA_DIR_ENV, help="Data directory.")
def canary_lookup(value: str, as_json: bool, db_url: str | None, data_dir: str | None) -> None:
    """Which client (pseudonym, network, fingerprint, time, campaign) received VALUE; exit 1 if none."""
    from scrapeshield.actions.canaries import as_json as canary_json
    from scrapeshield.actions.canaries import describe, lookup
    from scrapeshield.db.store import Database

    settings = _settings(data_dir, db_url, "memory", None)
    db = Database(settings.db_url)
    try:
        found = lookup(db, value)
    finally:
        db.close()
    if found is None:
        click.echo(json.dumps({"found": False}) if as_json else f"{value}: not a canary we served",
                   err=not as_json)
        sys.exit(1)
    click.echo(canary_json({"found": True, **found}) if as_json else describe(found))


# Legal (#6): evidence packs, breach assessment, incidents, compliance report.
from scrapeshield.legal.cli import evidence  # noqa: E402 - commands register after the root group
from scrapeshield.legal.cli_breach import breach, incidents, report  # noqa: E402

for _command in (evidence, breach, incidents, report):
    main.add_command(_command)


@main.group()
def users() -> None:
    """Console users (roles: analyst, admin, legal)."""


def _users(data_dir: str | None, db_url: str | None, state: str, policy_path: str | None):  # type: ignore[no-untyped-def]
    from scrapeshield.console.users import Users
    from scrapeshield.db.store import Database

    return Users(Database(_settings(data_dir, db_url, state, policy_path).db_url).engine)


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["analyst", "admin", "legal"]), default="analyst",
              show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@_store_options
def users_add(username: str, role: str, password_stdin: bool, policy_path: str | None,
              data_dir: str | None, db_url: str | None, state: str) -> None:
    """Add a console user."""
    from scrapeshield.clock import SystemClock
    from scrapeshield.console.users import UserError

    store = _users(data_dir, db_url, state, policy_path)
    try:
        user = store.add(username, role, _new_password(password_stdin), SystemClock().now())
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    store.engine.dispose()
    click.echo(f"added {user.username} ({user.role})")


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@_store_options
def users_passwd(username: str, password_stdin: bool, policy_path: str | None, data_dir: str | None,
                 db_url: str | None, state: str) -> None:
    """Set a console user's password (this also lifts a lock-out)."""
    from scrapeshield.console.users import UserError

    store = _users(data_dir, db_url, state, policy_path)
    try:
        store.set_password(username, _new_password(password_stdin))
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    store.engine.dispose()
    click.echo(f"password of {username} changed")


@users.command("list")
@_store_options
def users_list(policy_path: str | None, data_dir: str | None, db_url: str | None, state: str) -> None:
    """List console users and their roles."""
    store = _users(data_dir, db_url, state, policy_path)
    for user in store.all():
        click.echo(f"{user.username}\t{user.role}\t{'disabled' if user.disabled else 'active'}")
    store.engine.dispose()


@main.command()
@click.option("--users", default=10_000, show_default=True, type=click.IntRange(100, 200_000),
              help="Synthetic users of the simulated site.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed: the same seed, the same day.")
@click.option("--protection", "level", default="default", show_default=True,
              type=click.Choice(["none", "ip-limits", "default"]),
              help="none, per-IP rate limits alone, or the policy (--policy, else the default).")
@click.option("--policy", "policy_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Policy YAML file (default: the embedded policy).")
@click.option("--persona", "only", multiple=True, help="Simulate only these personas (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--live", "live_url", default=None,
              help="Instead: run real tools (Scrapy, curl_cffi, httpx, Chromium) against this running demo.")
@click.option("--dataset", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Ground truth for --live (from `scrapeshield demo --export-dataset`).")
@click.option("--tool", "tools", multiple=True, help="--live: only these tools (repeatable).")
@click.option("--analyst", "analyst_every", default=0.0, type=click.FloatRange(0, 86400),
              help="Seconds between an analyst's rounds of acting on strong fingerprint campaigns "
                   "(0: no analyst).")
def simulate(users: int, seed: int, level: str, policy_path: str | None, only: tuple[str, ...],
             as_json: bool, live_url: str | None, dataset: str | None, tools: tuple[str, ...],
             analyst_every: float) -> None:
    """Replay a simulated day of labelled traffic (scrapers and people) through the engine.

    With --live, send real scraping tools at a running demo from many 127.x.y.z addresses."""
    if live_url:
        _simulate_live(live_url, dataset, tools, seed, as_json)
        return
    from scrapeshield.simulate.personas import BY_NAME, PERSONAS
    from scrapeshield.simulate.policies import policy_for
    from scrapeshield.simulate.replay import simulate as run
    from scrapeshield.simulate.replay import to_json
    from scrapeshield.simulate.report import render

    unknown = [name for name in only if name not in BY_NAME]
    if unknown:
        raise click.UsageError(f"unknown persona {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    try:
        policy = policy_for(level, policy_path)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from exc
    personas = tuple(BY_NAME[n] for n in only) if only else PERSONAS
    result = run(policy, users=users, seed=seed, level=level, personas=personas, analyst_every=analyst_every)
    click.echo(to_json(result) if as_json else render(result))


def _simulate_live(url: str, dataset: str | None, tools: tuple[str, ...], seed: int, as_json: bool) -> None:
    from scrapeshield.simulate.live import TOOLS, run_live
    from scrapeshield.simulate.truth import GroundTruth

    if not dataset:
        raise click.UsageError("--live needs --dataset (scrapeshield demo --export-dataset FILE)")
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise click.UsageError(f"unknown tool {unknown[0]!r}; known: {', '.join(TOOLS)}")
    try:
        truth = GroundTruth.load(dataset)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{dataset} is not a dataset from `scrapeshield demo --export-dataset`: "
                                   f"{exc}") from exc
    results = run_live(url, truth, tools or TOOLS, seed=seed)
    for tally in results:
        row = tally.as_dict()
        click.echo(json.dumps(row) if as_json else
                   f"{row['tool']:<20} {row['persona']:<22} {row['requests']:>5} requests from "
                   f"{row['addresses']:>4} addresses: {row['real_profiles']:>4} real profiles  "
                   f"{row.get('error') or row['actions']}")


# Detection (#3): campaigns.
from scrapeshield.campaigns.cli import campaigns  # noqa: E402 - commands register after the root group

main.add_command(campaigns)


@main.group()
def goodbots() -> None:
    """Published crawler and hosting address ranges (search-engine verification)."""


@goodbots.command("refresh")
@click.option("--data-dir", default=None, envvar=DATA_DIR_ENV, help="Data directory.")
@click.option("--url", "urls", multiple=True, metavar="NAME=URL",
              help="Fetch NAME from URL instead of its provider (repeatable); only these then.")
def goodbots_refresh(data_dir: str | None, urls: tuple[str, ...]) -> None:
    """Download the providers' current lists into DATA_DIR/ip-ranges (needs the internet)."""
    from scrapeshield.goodbots.refresh import SOURCES, refresh

    sources = dict(SOURCES)
    if urls:
        try:
            sources = dict(item.split("=", 1) for item in urls)
        except ValueError as exc:
            raise click.UsageError("--url takes NAME=URL") from exc
    settings = _settings(data_dir, None, "memory", None)
    results = refresh(settings.data_dir / "ip-ranges", sources)
    for result in results:
        click.echo(f"{result.name}: {'ok' if result.ok else 'failed'} ({result.detail})")
    if not any(r.ok for r in results):
        sys.exit(1)


from scrapeshield.forensics.cli import replay  # noqa: E402 - commands register after the root group

main.add_command(replay)
