"""The streamed CSV of the Raw data report, shared by the admin and the Data API."""
from __future__ import annotations

from datetime import datetime

from flask import Response

from core.reporting import csv_export
from web.messages import translations_for


def requests_csv_response(session_factory, account_id: int, flt, *, sort, lang: str, zone, delimiter: str) -> Response:
    translations = translations_for(lang)

    def generate():
        # Its own session: the rows stream after the view has returned.
        with session_factory() as session:
            yield from csv_export.iter_requests_csv(session, account_id, flt, sort=sort, translations=translations, tz=zone.key,
                                                 delimiter=csv_export.DELIMITERS[delimiter])

    stamp = datetime.now(zone).strftime("%Y-%m-%d_%H-%M")
    # The two exports side by side in Downloads must not overwrite each other or look alike.
    suffix = "-excel" if csv_export.DELIMITERS[delimiter] == ";" else ""
    return Response(generate(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="requests_{stamp}{suffix}.csv"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })
