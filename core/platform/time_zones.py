"""The account's time zone (issue 15 §10): every time on every screen is shown in it.

Stored as an IANA name on the account (default Europe/Moscow, the spec's); dates typed in the admin
and the Data API's `tz` default are days in it too."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy.orm import Session

from core.models import Account
from core.platform.errors import ValidationFailed

DEFAULT_TIME_ZONE = "Europe/Moscow"
# Offered first: Russia's zones west to east, then the neighbours amoCRM accounts are often in.
COMMON_ZONES = (
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk", "Asia/Novosibirsk",
    "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan", "Asia/Kamchatka",
    "Europe/Minsk", "Asia/Almaty", "Asia/Tashkent", "Asia/Tbilisi", "Asia/Yerevan", "Asia/Baku", "UTC",
)


def account_time_zone(session: Session, account_id: int) -> str:
    account = session.get(Account, account_id)
    return (account.time_zone if account is not None and account.time_zone else None) or DEFAULT_TIME_ZONE


def set_time_zone(session: Session, account_id: int, name) -> str:
    """Validate and store; the caller commits."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("time_zone is required, e.g. Europe/Moscow", "time_zone")
    name = name.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"unknown time zone {name[:64]!r}; use an IANA name such as Europe/Moscow", "time_zone") from None
    session.get(Account, account_id).time_zone = name
    session.flush()
    return name


def zone_choices() -> list[str]:
    """The common zones, then every other IANA zone alphabetically."""
    rest = sorted(z for z in available_timezones() if z not in COMMON_ZONES and "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return list(COMMON_ZONES) + rest
