"""Glue for web frameworks: ``contrib.django`` (middleware and app config), ``contrib.flask``.

Each is a thin layer over ``scrapeshield.hosts.wsgi``; importing one needs its framework.
"""
