"""An integration's life: set up, connected, checked, kept alive, removed.

- `settings`: integrations and their attribution settings (spec steps 1–7), for the admin and the Data API.
- `connect`: the OAuth connect (state, callback, parked codes, the confirmation) and webhook registration.
- `diagnostics` («Проверить интеграцию») and `live_check` («Проверить на тестовом обращении»).
- `site_script`: «Скрипт для вашего сайта» (step 7).
- `webhook_rotation`, `removal`: a new webhook url; deleting an integration.
- `maintenance`: tokens refreshed ahead, webhooks read back from amoCRM, and replaying events by filter.
"""
