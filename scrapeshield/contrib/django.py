"""Django: a middleware and an app config over the WSGI gate (``scrapeshield.hosts.wsgi``).

In ``settings.py``::

    INSTALLED_APPS = [..., "scrapeshield.contrib.django.ScrapeshieldConfig"]
    MIDDLEWARE = ["scrapeshield.contrib.django.ScrapeshieldMiddleware", ...]  # first
    SCRAPESHIELD = {"policy": "policy.yaml", "data_dir": "/var/lib/scrapeshield"}  # "db": URL

The app config holds the process's one shield. It is built when the middleware is
loaded (a bad policy stops the server from starting), not in ``ready()``, which every
``manage.py`` command runs. The event writer thread starts with the first request the
process serves, so that under ``gunicorn --preload`` it runs in the worker and not in
the master that forks it; the shield is closed (pending events written) at exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.apps import AppConfig, apps  # type: ignore[import-untyped]
from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.http import HttpResponse  # type: ignore[import-untyped]

from scrapeshield.actions.responses import Reply
from scrapeshield.hosts.wsgi import Gate
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings

log = logging.getLogger("scrapeshield.django")

SETTING_KEYS = ("policy", "data_dir", "db")


def shield_settings() -> Settings:
    """``settings.SCRAPESHIELD`` as scrapeshield Settings; unknown keys are refused."""
    given = getattr(settings, "SCRAPESHIELD", {})
    if not isinstance(given, dict):
        raise ImproperlyConfigured("SCRAPESHIELD must be a dict with keys " + ", ".join(SETTING_KEYS))
    unknown = sorted(set(given) - set(SETTING_KEYS))
    if unknown:
        raise ImproperlyConfigured(
            f"SCRAPESHIELD: unknown key(s) {', '.join(map(str, unknown))}; "
            f"known: {', '.join(SETTING_KEYS)}"
        )
    values = {key: None if given.get(key) is None else str(given[key]) for key in SETTING_KEYS}
    return Settings.resolve(
        data_dir=values["data_dir"], db_url=values["db"], policy_path=values["policy"]
    )


class ScrapeshieldConfig(AppConfig):  # type: ignore[misc]
    name = "scrapeshield.contrib.django"
    label = "scrapeshield"
    verbose_name = "scrapeshield"

    def __init__(self, app_name: str, app_module: Any) -> None:
        super().__init__(app_name, app_module)
        self._lock = threading.Lock()
        self._gate: Gate | None = None
        self._started = False

    @property
    def shield(self) -> Shield:
        return self.gate().shield

    def gate(self) -> Gate:
        """The process's gate and shield, built on first use from ``settings.SCRAPESHIELD``."""
        with self._lock:
            if self._gate is None:
                self._gate = Gate(Shield(shield_settings()))
            return self._gate

    def start(self) -> None:
        """Start the event writer, once per process."""
        shield = self.shield
        with self._lock:
            if not self._started:
                self._started = True
                shield.start()
                atexit.register(shield.close)


class ScrapeshieldMiddleware:
    """The shield in front of every view; list it first in MIDDLEWARE."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        try:
            config = apps.get_app_config("scrapeshield")
        except LookupError as exc:
            raise ImproperlyConfigured(
                "add 'scrapeshield.contrib.django.ScrapeshieldConfig' to INSTALLED_APPS"
            ) from exc
        if not isinstance(config, ScrapeshieldConfig):
            raise ImproperlyConfigured(f"the app label 'scrapeshield' is taken by {config!r}")
        self.config = config
        self.gate = config.gate()
        self._started = False

    def __call__(self, request: Any) -> Any:
        if not self._started:
            self._started = True
            try:
                self.config.start()
            except Exception:  # no event records, but the site keeps being served and guarded
                log.exception("starting the shield's event writer failed")
        verdict = self.gate.check(request.META, request.path, request.read)
        if verdict.reply is not None:
            return to_response(verdict.reply)
        response = self.get_response(request)
        if verdict.allowed is not None:  # a 404 share is behaviour, as in the WSGI form
            self.gate.shield.engine.observe(verdict.allowed, int(getattr(response, "status_code", 200)))
        for name, value in verdict.tags:
            response[name] = value
        return response


def to_response(reply: Reply) -> Any:
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        response[name] = value
    return response
