"""Verified good bots: search-engine crawlers admitted only when their address proves it.

``ranges`` reads the providers' published address lists (shipped, refreshable), ``verify``
checks a user-agent's claim against them and against forward-confirmed reverse DNS,
``refresh`` downloads newer lists when the machine is online.
"""
