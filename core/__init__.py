"""Chatsource's domain logic: plain functions and classes over a SQLAlchemy session and ids.

Nothing here imports Flask, Dramatiq or werkzeug; `web/` and `workers/` are thin adapters over it. The packages,
in the order a chat meets them:

- `platform`: what every part stands on — settings, the database, Redis, locks, rate limits, encryption,
  log redaction, the time zone, and `messages` (words for people as code + template + parameters).
- `access`: analytics accounts, their admin users, Data API tokens, sign-in.
- `models`: the data model (one module: every table, each row belonging to an account).
- `amocrm`: the only code that talks to amoCRM — hosts, OAuth, tokens, the REST client, reading
  contacts and leads, the talk origins (messengers).
- `tracking`: the site side — the main tracking code's collect endpoint, visitor sessions, user agents,
  the account's sites, sources and campaigns and their condition rules, what tracking refused.
- `inbox`: webhooks in → requests out — storing talk items, the event lifecycle, processing, attribution
  (session, button click, messenger, default), repeat requests, reconciliation with amoCRM, worker health.
- `integrations`: setting an integration up and keeping it alive — its settings, the OAuth connect,
  diagnostics and the live check, the script for the client's site, webhook rotation, removal,
  maintenance and replay.
- `reporting`: what people read — the Raw data report and its CSV, the dashboard and its daily roll-up.
"""
