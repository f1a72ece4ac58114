"""A minimal Django project with the shield's middleware, for tests/test_e2e_wsgi.py."""

from __future__ import annotations

import os

SECRET_KEY = "scrapeshield-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "django_site.urls"
WSGI_APPLICATION = "django_site.wsgi.application"
INSTALLED_APPS = ["scrapeshield.contrib.django.ScrapeshieldConfig"]
MIDDLEWARE = [
    "scrapeshield.contrib.django.ScrapeshieldMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES: dict[str, object] = {}
USE_TZ = True
TIME_ZONE = "UTC"
SCRAPESHIELD = {
    "data_dir": os.environ.get("SCRAPESHIELD_DATA_DIR"),
    "policy": os.environ.get("SCRAPESHIELD_POLICY") or None,
}
