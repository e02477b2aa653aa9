"""The site side: page views → visitor sessions, and the dictionaries they are attributed by.

- `collect`: `POST /t/collect` — one page view → the visitor's session (continue or start).
- `sessions`: creating a visitor session, classifying its traffic, attributing it to a campaign and a source.
- `user_agents`: robot or person, device and browser.
- `catalog`, `conditions`: the account's sites, sources and ad campaigns, and their condition rules.
- `refusals`: what the tracking endpoint refused, per site.
"""
