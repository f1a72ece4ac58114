"""The docs site: generated reference pages match the code, and the site builds offline.

``scripts/gen_docs.py`` writes docs/reference/{policy,cli,metrics}.md from the policy schema,
the click commands and a real Shield's /metrics. The pages are committed; when the code
changes, regenerate them (``make docs`` or ``python scripts/gen_docs.py``) and commit both.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_docs.py"
REFERENCE = ROOT / "docs" / "reference"
PAGES = ("policy.md", "cli.md", "metrics.md")
MKDOCS = Path(sys.executable).with_name("mkdocs")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("page", PAGES)
def test_committed_reference_matches_the_code(generated: Path, page: str) -> None:
    committed = REFERENCE / page
    assert committed.exists(), f"{committed} is missing: run `python scripts/gen_docs.py`"
    assert committed.read_text() == (generated / page).read_text(), (
        f"docs/reference/{page} is out of date with the code: run `python scripts/gen_docs.py` "
        "(or `make docs`) and commit the result"
    )


def test_reference_covers_the_code(generated: Path) -> None:
    """A spot check that generation walks everything, not just that it is stable."""
    from scrapeshield.cli import main
    from scrapeshield.policy.schema import Policy
    from scrapeshield.signals.catalog import SIGNALS

    policy = (generated / "policy.md").read_text()
    for key in Policy.model_fields:
        assert f"| `{key}` |" in policy
    for signal in SIGNALS:
        assert f"| `{signal}` |" in policy
    cli = (generated / "cli.md").read_text()
    for name in main.list_commands(click.Context(main)):
        assert f"## `scrapeshield {name}`" in cli
    metrics = (generated / "metrics.md").read_text()
    assert "`scrapeshield_decisions_total`" in metrics and "`action`: `allow`" in metrics


def test_site_builds_offline_and_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict`: broken links and anchors, pages missing from the nav and a
    missing included file all fail it. The built-in theme needs no network."""
    site = tmp_path / "site"
    result = subprocess.run([str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    pages = {p.relative_to(site).as_posix() for p in site.rglob("index.html")}
    for page in ("index.html", "hosts/asgi/index.html", "hosts/proxy/index.html",
                 "hosts/wsgi/index.html", "hosts/nginx/index.html", "hosts/caddy/index.html",
                 "operations/index.html", "reference/policy/index.html",
                 "reference/cli/index.html", "reference/metrics/index.html"):
        assert page in pages
    nginx = (site / "hosts" / "nginx" / "index.html").read_text()
    assert "auth_request /.scrapeshield/auth;" in nginx  # the deploy/ file, inlined
    for html in site.rglob("*.html"):
        # Nothing a reader's browser would fetch from elsewhere (fonts, scripts, styles).
        assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', html.read_text()), html
