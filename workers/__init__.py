"""Dramatiq adapters over core/: the broker, the actors, and the embedded worker of local runs."""
