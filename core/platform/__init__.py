"""What every part of the product stands on: settings from the environment (`settings`), the database
(`db`), the outside services bundled per process (`services`: Redis, locks, rate limiters, encryption),
`crypto`, `locks`, `ratelimit`, `redis_connect`, `log_redaction`, the account's time zone (`time_zones`),
the words for people (`messages`: a code + a template marked for translation + parameters; `text.N_`) and
the errors about a person's input every package raises (`errors`: `ValidationFailed`, `NotFound`)."""
