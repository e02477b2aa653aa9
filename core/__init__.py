"""Chatsource's domain logic: plain functions and classes over a SQLAlchemy session and ids.

Nothing here imports Flask or Dramatiq; `web/` and `workers/` are thin adapters over it.
"""
