"""The errors every part of core raises about a person's input, and what the admin says about them.

`ValidationFailed` is bad input (the Data API answers 400 with `field`, the admin shows `said` in the
reader's language); `NotFound` is a row that does not exist in the caller's account (404 — another
account's rows are as good as absent, core.access.ownership)."""
from __future__ import annotations

from core.platform.messages import N_, Message, define

DATES_REVERSED = define("dates.reversed", N_("The start date is after the end date."))


class ValidationFailed(ValueError):
    """Bad input from a person: `field` names what to fix. `message` is the English the Data API
    returns; `said`, when given, is the problem as a message for people (core/platform/messages.py), which the
    admin renders in its language (without one, it shows `message` as it is)."""

    def __init__(self, message: str, field: str | None = None, said: Message | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.said = said


class NotFound(LookupError):
    """The id names no row of the caller's account (the Data API answers 404)."""
