"""A small Flask site behind the WSGI middleware, served by gunicorn in tests/test_e2e_wsgi.py.

Environment: SCRAPESHIELD_DATA_DIR, SCRAPESHIELD_POLICY (optional: the default policy,
which maps /api/v1/users/{id}), SCRAPESHIELD_TEST_BREAK (see breakage.py).
"""

from __future__ import annotations

import os

import breakage
from flask import Flask, Response

from scrapeshield.contrib.flask import protect
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings

app = Flask(__name__)

HOME = """<!doctype html><meta charset=utf-8><title>people</title>
<link rel=stylesheet href="/static/site.css"><h1>people</h1>
<ul>{}</ul>"""


@app.get("/")
def home() -> str:
    items = "".join(f'<li><a href="/api/v1/users/{i}">user{i}</a>' for i in range(1, 11))
    return HOME.format(items)


@app.get("/static/site.css")
def stylesheet() -> Response:
    return Response("body { font-family: sans-serif }", mimetype="text/css")


@app.get("/api/v1/users/<int:user_id>")
def profile(user_id: int) -> dict[str, object]:
    return {"id": user_id, "username": f"user{user_id}", "phone": f"+44 7700 9{user_id:05d}"}


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("the app's own bug")


shield = Shield(Settings.resolve(policy_path=os.environ.get("SCRAPESHIELD_POLICY") or None))
breakage.apply(shield)
shield.start()
protect(app, shield)
