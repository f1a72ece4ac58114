"""Labelled traffic for every persona of the threat model, replayed through the real engine.

``tools`` builds each kind of client's headers and ``clients`` holds the real ones (order,
values, TLS fingerprints); ``network`` the address pools; ``people``, ``scrapers`` and
``fleets`` the personas (each a generator of requests that reacts to the decisions it
gets), listed in ``personas``; ``replay`` the event loop on simulated time with the
ground-truth accounting (``results``); ``team`` the campaign grouping and an analyst;
``report`` the tables. ``live``, ``live_scrapy``, ``live_proxy`` and ``truth`` run the
real tools against a running demo.
"""
