"""Benchmark 5 — reports on a big account: the Raw data report, the dashboard, the CSV export.

    python -m bench.reports [--requests 1000000] [--sessions 5000000]

One account with a year of data made straight in PostgreSQL (`generate_series`, a few minutes):
`--sessions` visitor sessions and `--requests` requests over two sites, ten campaigns, five sources
and two integrations, names, phones and emails all different. Then, through the Data API served by
gunicorn as in production, each timed 5 times after a warm-up:
the Raw data first page; a page filtered by channel, campaign and dates and searched by name; the
dashboard for 30 days and for the year; and a 100k-row CSV export, with the web processes' memory
sampled while it streams. Targets (docs/benchmarks.md): < 300 ms each page and dashboard, the export < 5 s
with flat memory.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import date, timedelta

from bench.harness import Stack, cli, machine_info
from bench.report import Report

SESSIONS_SQL = """
insert into visitor_sessions (account_id, site_id, visitor_id, started_at, last_activity_at, entrance_page, referrer,
    referrer_domain, utm_source, utm_medium, utm_campaign, channel, campaign_id, source_id, device, browser, page_views)
select :account, (:sites)[1 + g % 2], md5(g::text), t, t + interval '4 minutes',
    'https://shop.example.ru/catalog/' || (g % 500) || '/?utm_source=' || (array['yandex','google','vk','mail'])[1 + g % 4],
    (array['https://yandex.ru/','https://www.google.com/','https://vk.com/',null])[1 + g % 4],
    (array['yandex.ru','google.com','vk.com',null])[1 + g % 4],
    (array['yandex','google','vk','mail'])[1 + g % 4], (array['cpc','organic','social','email'])[1 + g % 4],
    'campaign-' || (g % 40), (array['paid','organic','social','referral','direct','email'])[1 + g % 6],
    (:campaigns)[1 + g % 10], (:sources)[1 + g % 5], (array['desktop','mobile','tablet'])[1 + g % 3],
    (array['Chrome','Safari','Firefox','Yandex'])[1 + g % 4], 1 + g % 7
from (select g, now() - ((g::bigint * 7919) % (365 * 86400)) * interval '1 second' as t
      from generate_series(1, :count) g) s
"""

REQUESTS_SQL = """
insert into requests (account_id, integration_id, talk_id, chat_id, origin, channel, contact_name, phone, email,
    created_at, closed_at, session_id, visitor_id, site_id, campaign_id, source_id, utm_source, utm_medium,
    utm_campaign, referrer, entrance_page, attribution, attribution_reason_code, attribution_reason_params,
    amo_lead_id, amo_contact_id,
    recorded_at, search_text)
select :account, (:integrations)[1 + g % 2], g, md5(g::text), o.origin, o.channel, n.name, n.phone, n.email,
    t, t + interval '20 minutes',
    case when g % 3 = 0 then :first_session + (g::bigint * 5) % :sessions else null end,
    case when g % 3 = 0 then md5(g::text) else null end,
    (:sites)[1 + g % 2], (:campaigns)[1 + g % 10], (:sources)[1 + g % 5],
    (array['yandex','google','vk','mail'])[1 + g % 4], (array['cpc','organic','social','email'])[1 + g % 4],
    'campaign-' || (g % 40), 'https://yandex.ru/', 'https://shop.example.ru/catalog/',
    (array['session','messenger','default'])[1 + g % 3], 'legacy', '{"text": "сгенерировано для бенчмарка"}'::jsonb,
    9000000 + g, 11000000 + g, t + interval '21 minutes',
    lower(n.name) || E'\\n' || lower(n.email) || E'\\n' || regexp_replace(n.phone, '[^0-9]', '', 'g')
from (select g, now() - ((g::bigint * 7919) % (365 * 86400)) * interval '1 second' as t
      from generate_series(1, :count) g) s
cross join lateral (select
    (array['Анна','Иван','Ольга','Сергей','Мария','Дмитрий','Елена','Алексей'])[1 + g % 8] || ' ' ||
    (array['Смирнова','Иванов','Кузнецова','Попов','Соколова','Лебедев','Новикова','Морозов'])[1 + (g / 8) % 8] ||
    ' ' || g as name,
    '+7916' || lpad((g % 10000000)::text, 7, '0') as phone, 'client' || g || '@example.ru' as email) n
cross join lateral (select (array['telegram','waba','vk','viber','instagram','avito','com.amocrm.amocrmwa'])[1 + g % 7] as origin,
    (array['telegram','whatsapp','vk','viber','instagram','avito','site_chat'])[1 + g % 7] as channel) o
"""


def timed(stack: Stack, path: str, runs: int = 5) -> dict:
    """Warm once, then time `runs` GETs of an API path (to the last byte)."""
    headers = {"Authorization": f"Bearer {stack.api_token}"}
    first = stack.http.get(f"{stack.url}/api/v1{path}", headers=headers, timeout=120)
    if first.status_code != 200:
        raise RuntimeError(f"GET {path} → {first.status_code}: {first.text[:300]}")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = stack.http.get(f"{stack.url}/api/v1{path}", headers=headers, timeout=120)
        response.content  # noqa: B018 - the timing includes reading the whole body
        times.append((time.perf_counter() - started) * 1000)
    body = first.json()
    return {"path": path, "median_ms": statistics.median(times), "max_ms": max(times), "runs_ms": times,
            "total": body.get("total") if isinstance(body, dict) else None}


def timed_plain_name_sort(stack: Stack, account: int, key: str, runs: int = 5) -> dict:
    """The statement a name sort ran before core.reporting.report walked the names (join + sort of every
    row), timed in the database the same way: warm once, then `runs` times."""
    import sqlalchemy as sa

    from core.models import ChatRequest
    from core.reporting.report import Sort

    stmt = Sort.parse(key).apply(sa.select(ChatRequest).where(ChatRequest.account_id == account)).limit(51)
    times = []
    with stack.engine.connect() as conn:
        conn.execute(stmt).all()
        for _ in range(runs):
            started = time.perf_counter()
            conn.execute(stmt).all()
            times.append((time.perf_counter() - started) * 1000)
    return {"sort": key, "median_ms": statistics.median(times), "max_ms": max(times), "runs_ms": times}


def timed_row_count(stack: Stack, account: int, runs: int = 5) -> dict:
    """The page total as it was counted before core.reporting.report summed the roll-up's days: a COUNT over
    the account's rows, timed in the database the same way (warm once, then `runs` times)."""
    import sqlalchemy as sa

    stmt = sa.text("select count(*) from requests where account_id = :a")
    times = []
    with stack.engine.connect() as conn:
        count = conn.scalar(stmt, {"a": account})
        for _ in range(runs):
            started = time.perf_counter()
            conn.scalar(stmt, {"a": account})
            times.append((time.perf_counter() - started) * 1000)
    return {"count": count, "median_ms": statistics.median(times), "max_ms": max(times), "runs_ms": times}


def web_rss_mb(stack: Stack) -> float:
    """Resident memory of all gunicorn processes (the master and its workers)."""
    import os

    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                pgrp = int(f.read().rsplit(")", 1)[1].split()[2])
            if pgrp != stack.web.pid:
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def export(stack: Stack, path: str) -> dict:
    samples: list[float] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(web_rss_mb(stack))
            time.sleep(0.05)

    before = web_rss_mb(stack)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    response = stack.http.get(f"{stack.url}/api/v1{path}", headers={"Authorization": f"Bearer {stack.api_token}"},
                              timeout=300, stream=True)
    size = lines = 0
    first_byte = None
    for chunk in response.iter_content(64 * 1024):
        if first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    return {"status": response.status_code, "seconds": seconds, "first_byte_s": first_byte, "bytes": size,
            "rows": lines - 1, "rss_before_mb": before, "rss_peak_mb": max(samples or [before]),
            "rss_growth_mb": max(samples or [before]) - before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to generate (default 1,000,000)")
    parser.add_argument("--sessions", type=int, default=5_000_000, help="visitor sessions (default 5,000,000)")
    parser.add_argument("--export-rows", type=int, default=100_000, help="rows of the CSV export (default 100,000)")
    args = parser.parse_args(argv)

    before = machine_info()
    report = Report("reports", f"Raw data, dashboard and CSV on {args.requests:,} requests and {args.sessions:,} sessions")
    with Stack("reports", accounts=0, worker=False) as stack:
        account = stack.scalar("select min(id) from accounts")
        sites = [stack.api("POST", "/sites", {"name": f"Сайт {i}", "domain": f"shop{i}.example.ru"})["id"] for i in range(2)]
        campaigns = [stack.api("POST", "/campaigns", {"name": f"Кампания {i}", "site_id": sites[i % 2]})["id"] for i in range(10)]
        sources = [stack.api("POST", "/sources", {"name": f"Источник {i}"})["id"] for i in range(5)]
        integrations = [stack.api("POST", "/integrations", {"name": f"amoCRM {i}", "amocrm_url": f"https://shop{i}.amocrm.ru"})["id"]
                        for i in range(2)]
        started = time.monotonic()
        with stack.engine.begin() as conn:
            import sqlalchemy as sa

            params = {"account": account, "sites": sites, "campaigns": campaigns, "sources": sources,
                      "integrations": integrations}
            print(f"[bench] generating {args.sessions:,} sessions…", flush=True)
            conn.execute(sa.text(SESSIONS_SQL), {**params, "count": args.sessions})
            first_session = conn.scalar(sa.text("select min(id) from visitor_sessions"))
            print(f"[bench] generating {args.requests:,} requests…", flush=True)
            conn.execute(sa.text(REQUESTS_SQL), {**params, "count": args.requests, "first_session": first_session,
                                                 "sessions": args.sessions})
        with stack.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("vacuum analyze requests"))
            conn.execute(sa.text("vacuum analyze visitor_sessions"))
            conn.execute(sa.text("vacuum analyze request_daily_counts"))  # autovacuum would, a minute after the load
        generated_in = time.monotonic() - started
        print(f"[bench] data ready in {generated_in:.0f} s", flush=True)

        today = date.today()
        month, year = (today - timedelta(days=29)).isoformat(), (today - timedelta(days=364)).isoformat()
        first_page = timed(stack, "/requests?limit=50")
        filtered = timed(stack, f"/requests?limit=50&channel=telegram&campaign_id={campaigns[3]}"
                                f"&date_from={(today - timedelta(days=90)).isoformat()}&date_till={today.isoformat()}&q=смирнова")
        phone = timed(stack, "/requests?limit=50&q=8%20916%20000%2012")
        dash_month = timed(stack, f"/dashboard?date_from={month}&date_till={today.isoformat()}")
        dash_year = timed(stack, f"/dashboard?date_from={year}&date_till={today.isoformat()}")
        # The same year in Etc/GMT-3 (Moscow's clock, another zone name): the raw rows grouped at each
        # call, as before the roll-up (core.reporting.rollup) — the before and after in one run.
        dash_year_raw = timed(stack, f"/dashboard?date_from={year}&date_till={today.isoformat()}&tz=Etc/GMT-3")
        by_campaign = timed(stack, "/requests?limit=50&sort=campaign")
        by_source = timed(stack, "/requests?limit=50&sort=-source")
        by_campaign_plain = timed_plain_name_sort(stack, account, "campaign")
        row_count = timed_row_count(stack, account)
        # The newest days holding at least --export-rows requests.
        days = stack.scalar("select ceil(extract(epoch from now() - min(created_at)) / 86400) from "
                            "(select created_at from requests order by created_at desc limit :n) t", n=args.export_rows)
        csv = export(stack, f"/requests.csv?date_from={(today - timedelta(days=int(days))).isoformat()}&date_till={today.isoformat()}")

        for label, result in (("Raw data: first page", first_page), ("Raw data: filtered + searched page", filtered),
                              ("Raw data: searched by phone", phone), ("dashboard: 30 days", dash_month),
                              ("dashboard: the year", dash_year),
                              ("dashboard: the year from the raw rows (tz Etc/GMT-3, no roll-up)", dash_year_raw),
                              ("Raw data sorted by campaign name", by_campaign),
                              ("Raw data sorted by source name, descending", by_source),
                              ("  before: the sorted join's statement alone (campaign)", by_campaign_plain),
                              ("  before: the page total as a COUNT of the rows alone", row_count)):
            report.add(label + " (median / max of 5)", f"{result['median_ms']:.0f} / {result['max_ms']:.0f}", "ms", "< 300",
                       result["median_ms"] < 300)
        totals = {first_page["total"], by_campaign["total"], by_source["total"]}
        report.add("  the pages' total = COUNT of the rows", f"{sorted(totals)} vs {row_count['count']:,}", "", "equal",
                   totals == {row_count["count"]})
        report.add("CSV export", f"{csv['rows']:,} rows, {csv['bytes'] / 2**20:.1f} MiB", "", f"≥ {args.export_rows:,} rows",
                   csv["status"] == 200 and csv["rows"] >= args.export_rows)
        report.add("  time to the last byte", round(csv["seconds"], 2), "s", "< 5", csv["seconds"] < 5)
        report.add("  web memory growth while streaming", round(csv["rss_growth_mb"], 1), "MiB", "flat (< 50)",
                   csv["rss_growth_mb"] < 50)
        report.add("data generated in", round(generated_in), "s")
        report.details.update(first_page=first_page, filtered=filtered, phone=phone, dashboard_30d=dash_month,
                              dashboard_year=dash_year, dashboard_year_raw=dash_year_raw,
                              sorted_by_campaign=by_campaign, sorted_by_source=by_source,
                              sorted_by_campaign_plain=by_campaign_plain, row_count=row_count, csv=csv, requests=args.requests, sessions=args.sessions)
    return report.finish(before)


if __name__ == "__main__":
    sys.exit(cli(main))
