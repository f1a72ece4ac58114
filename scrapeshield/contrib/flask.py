"""Flask: the WSGI middleware around ``app.wsgi_app``, so Flask's own error handling stays inside.

    shield = Shield(Settings.resolve(policy_path="policy.yaml"))
    shield.start()  # the event writer; in the worker process (not before a fork)
    protect(app, shield)  # the same as: app.wsgi_app = ScrapeshieldWSGI(app.wsgi_app, shield)
"""

from __future__ import annotations

from flask import Flask

from scrapeshield.hosts.wsgi import ScrapeshieldWSGI
from scrapeshield.runtime import Shield


def protect(app: Flask, shield: Shield) -> ScrapeshieldWSGI:
    """Put the shield in front of ``app``; it is then also ``app.extensions["scrapeshield"]``."""
    middleware = ScrapeshieldWSGI(app.wsgi_app, shield)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    app.extensions["scrapeshield"] = shield
    return middleware
