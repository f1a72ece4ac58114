"""Thin adapters that put the engine in front of an application. None ever raises into it."""
