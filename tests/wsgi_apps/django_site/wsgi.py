"""The WSGI entry point gunicorn serves; applies an injected failure when asked to."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

import breakage  # noqa: E402
from django.apps import apps  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
breakage.apply(apps.get_app_config("scrapeshield").shield)
