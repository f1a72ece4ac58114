"""Labelled traffic for every persona of the threat model, replayed through the real engine.

``tools`` holds what each client really sends (headers in order, TLS fingerprints),
``network`` the address pools, ``people`` and ``scrapers`` the personas (each a
generator of requests that reacts to the decisions it gets), ``replay`` the event
loop on simulated time with the ground-truth accounting, ``report`` the tables.
"""
