"""The Raw data report as CSV (`iter_requests_csv`): the report's rows streamed in chunks from a
server-side cursor (flat memory on a million rows), cells a spreadsheet would run as a formula
neutralised (`safe_cell`), human column headers in Russian or English, names and amoCRM links resolved.
The admin's download and `GET /api/v1/requests.csv` are this one function (byte-identical)."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.messengers import channel_label
from core.models import ChatRequest
from core.platform.errors import ValidationFailed
from core.platform.messages import N_, Message, Translations, define, render
from core.reporting.report import (
    ATTRIBUTIONS,
    DEFAULT_TZ,
    RequestFilter,
    Sort,
    attribution_label,
    get_zone,
    load_refs,
)

# The CSV's «Повторное обращение» column.
REPEAT_YES = define("csv.repeat.yes", N_("yes"))
REPEAT_NO = define("csv.repeat.no", N_("no"))
LANGS = ("ru", "en")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A number or a phone (+79161234567, -15, +7 (916) 123-45-67): digits, signs, spaces, brackets and
# separators call no function and reach no other cell or program, so it is written as it is.
_PLAIN_NUMBER = re.compile(r"[+-]?[\d\s().,-]*\d[\d\s().,-]*\Z")


def safe_cell(value) -> str:
    """A cell a spreadsheet shows as text: one that starts with = + - @, a tab or a carriage return
    (a formula in Excel, LibreOffice or Google Sheets) gets a leading apostrophe (OWASP's advice) —
    unless it is only a number or a phone, which cannot run as a formula."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text) else text


@dataclass(frozen=True)
class CsvColumn:
    key: str
    title: str  # an English msgid; %(tz)s is the time zone of the dates
    literal: bool = False  # a name of code (utm_source) or the same in every language (Email)

    def header(self, translations: Translations | None, tz_name: str) -> str:
        if self.literal:
            return self.title
        return render(Message(f"csv.{self.key}", self.title, {"tz": tz_name} if "%(tz)s" in self.title else {}),
                      translations)


CSV_COLUMNS: tuple[CsvColumn, ...] = (
    CsvColumn("id", N_("Request ID")),
    CsvColumn("created_at", N_("Date and time (%(tz)s)")),
    CsvColumn("channel", N_("Channel")),
    CsvColumn("origin", N_("amoCRM channel code")),
    CsvColumn("contact_name", N_("Contact name")),
    CsvColumn("phone", N_("Phone")),
    CsvColumn("phone_raw", N_("Phone as in amoCRM")),
    CsvColumn("email", "Email", literal=True),
    CsvColumn("site", N_("Site")),
    CsvColumn("campaign", N_("Ad campaign")),
    CsvColumn("source", N_("Source")),
    CsvColumn("utm_source", "utm_source", literal=True),
    CsvColumn("utm_medium", "utm_medium", literal=True),
    CsvColumn("utm_campaign", "utm_campaign", literal=True),
    CsvColumn("utm_term", "utm_term", literal=True),
    CsvColumn("utm_content", "utm_content", literal=True),
    CsvColumn("referrer", N_("Referrer")),
    CsvColumn("entrance_page", N_("Entrance page")),
    CsvColumn("session_id", N_("Session ID")),
    CsvColumn("visitor_id", N_("Visitor ID")),
    CsvColumn("attribution", N_("Attribution")),
    CsvColumn("attribution_reason", N_("Attribution reason")),
    CsvColumn("integration", N_("Integration")),
    CsvColumn("talk_id", N_("amoCRM talk ID")),
    CsvColumn("amo_lead_url", N_("Lead in amoCRM")),
    CsvColumn("amo_contact_url", N_("Contact in amoCRM")),
    CsvColumn("closed_at", N_("Talk closed (%(tz)s)")),
    CsvColumn("is_repeat", N_("Repeat request")),
    CsvColumn("first_request_id", N_("First request ID")),
)
_CSV_SOURCE = (
    "id", "created_at", "channel", "origin", "contact_name", "phone", "phone_raw", "email", "site_id", "campaign_id",
    "source_id", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "entrance_page", "session_id",
    "visitor_id", "attribution", "attribution_reason_code", "attribution_reason_params", "integration_id", "talk_id", "amo_lead_id", "amo_contact_id",
    "closed_at", "is_repeat", "first_request_id",
)
DELIMITERS = {",": ",", ";": ";", "comma": ",", "semicolon": ";", "tab": "\t"}


def csv_headers(translations: Translations | None = None, tz: str = DEFAULT_TZ) -> list[str]:
    return [c.header(translations, tz) for c in CSV_COLUMNS]


def iter_requests_csv(session: Session, account_id: int, flt: RequestFilter | None = None, *,
                      sort: Sort | str | None = None, translations: Translations | None = None, tz: str = DEFAULT_TZ,
                      delimiter: str = ",", chunk_rows: int = 1000, bom: bool = True) -> Iterator[str]:
    """Every request matching `flt` as CSV text, yielded about `chunk_rows` rows at a time.

    Rows come from a server-side cursor (`yield_per`) as plain tuples, never ORM objects, so memory
    stays flat however many rows match. Names (site, campaign, source, integration) are resolved from
    the account's dictionaries loaded once; dates are local to `tz`; channel and attribution are
    said in the language of `translations` (the web layer's catalogue; English without); every text cell is made safe as `safe_cell` says. The UTF-8 BOM (`bom`) makes Excel
    read Cyrillic correctly; `delimiter` «;» suits Excel with Russian regional settings."""
    flt = flt or RequestFilter()
    sort = sort if isinstance(sort, Sort) else Sort.parse(sort)
    zone = get_zone(tz)
    delimiter = DELIMITERS.get(delimiter, delimiter)
    if delimiter not in (",", ";", "\t"):
        raise ValidationFailed("delimiter must be a comma, a semicolon or a tab", "delimiter")
    refs = load_refs(session, account_id)
    columns = [getattr(ChatRequest, name) for name in _CSV_SOURCE]
    stmt = sort.apply(sa.select(*columns).where(*flt.conditions(account_id)))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([safe_cell(h) for h in csv_headers(translations, zone.key)])
    yield ("\ufeff" if bom else "") + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()

    # The loop below runs once per row of a possibly million-row export: plain tuples, cells made
    # safe with one lookup, names made safe once in advance, dates formatted without strftime.
    formula = frozenset(_FORMULA_START)
    plain = _PLAIN_NUMBER.match

    def safe(text):
        return "'" + text if text and text[0] in formula and not plain(text) else text

    def when(value: datetime | None) -> str | None:
        return value.astimezone(zone).replace(tzinfo=None).isoformat(" ", "seconds") if value else None

    sites = {k: safe(v) for k, v in refs.sites.items()}
    campaigns = {k: safe(v) for k, v in refs.campaigns.items()}
    sources = {k: safe(v) for k, v in refs.sources.items()}
    integrations = {k: safe(v) for k, v in refs.integrations.items()}
    bases = refs.amo_bases  # http(s) addresses: never a formula
    channels: dict[str, str] = {}
    attributions = {k: attribution_label(k, translations) for k in ATTRIBUTIONS}

    def reason_text(code, params):
        return safe(render(Message.from_json(code, params), translations))
    repeat_labels = {True: safe(render(REPEAT_YES(), translations)), False: safe(render(REPEAT_NO(), translations))}

    result = session.execute(stmt, execution_options={"yield_per": max(int(chunk_rows), 1)})
    try:
        for partition in result.partitions():
            lines = []
            for (rid, created_at, channel, origin, name, phone, phone_raw, email, site_id, campaign_id, source_id, utm_source,
                 utm_medium, utm_campaign, utm_term, utm_content, referrer, entrance_page, session_id, visitor_id,
                 attribution, reason_code, reason_params, integration_id, talk_id, lead_id, contact_id,
                 closed_at, is_repeat, first_request_id) in partition:
                label = channels.get(channel)
                if label is None:
                    label = channels[channel] = safe(channel_label(channel, translations))
                base = bases.get(integration_id)
                lines.append((
                    rid, when(created_at), label, safe(origin), safe(name), safe(phone), safe(phone_raw), safe(email),
                    sites.get(site_id), campaigns.get(campaign_id), sources.get(source_id), safe(utm_source),
                    safe(utm_medium), safe(utm_campaign), safe(utm_term), safe(utm_content), safe(referrer),
                    safe(entrance_page), session_id, safe(visitor_id), attributions.get(attribution) or safe(attribution),
                    reason_text(reason_code, reason_params), integrations.get(integration_id), talk_id,
                    f"{base}/leads/detail/{lead_id}" if base and lead_id else None,
                    f"{base}/contacts/detail/{contact_id}" if base and contact_id else None, when(closed_at),
                    repeat_labels[bool(is_repeat)], first_request_id,
                ))
            writer.writerows(lines)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    finally:
        result.close()
