-- wrk script of the benchmarks (run through bench.loadgen.run_wrk, which sets the env).
--   BENCH_MODE=webhook  POST amoCRM update_talk bodies, each with a talk id never sent before;
--                       BENCH_BODY is the form body with TALKID, CHATID, INWORK, CONTACTID, CREATEDAT
--                       and UPDATEDAT placeholders (each talk its own contact and minute);
--                       every BENCH_CLOSED_EVERY-th talk is closed (is_in_work=0), the others read.
--   BENCH_MODE=post     POST the same BENCH_BODY every time, as BENCH_CONTENT_TYPE, with an Origin
--                       header BENCH_ORIGIN when set (the tracking code's collect call).
--                       With BENCH_VISITORS=N the body's VISITORID placeholder becomes one of N visitor
--                       ids per thread, in turn: after its first page each visitor continues its session.
--   BENCH_MODE=get      plain GET of the url (the trivial endpoint, the yardstick).
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles in microseconds.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads)
  table.insert(threads, thread)
end

local mode, body, base, closed_every, counter, visitors

function init(args)
  mode = os.getenv("BENCH_MODE") or "get"
  body = os.getenv("BENCH_BODY") or ""
  base = tonumber(os.getenv("BENCH_TALK_BASE") or "1000000000") + thread_no * 100000000
  closed_every = tonumber(os.getenv("BENCH_CLOSED_EVERY") or "2")
  counter = 0
  visitors = tonumber(os.getenv("BENCH_VISITORS") or "0")
  if mode == "webhook" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["User-Agent"] = "amoCRM-Webhooks/3.0"
  elseif mode == "post" then
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
    wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
    local origin = os.getenv("BENCH_ORIGIN")
    if origin then wrk.headers["Origin"] = origin end
  end
end

function request()
  if mode == "post" and visitors > 0 then
    counter = counter + 1
    local visitor = string.format("bench-visitor-%d-%d", thread_no, counter % visitors)
    return wrk.format(nil, nil, nil, (body:gsub("VISITORID", visitor)))
  end
  if mode ~= "webhook" then
    return wrk.format(nil, nil, nil, nil)  -- get and post: the method, headers and body set in init
  end
  counter = counter + 1
  local talk_id = base + counter
  local in_work = (counter % closed_every == 0) and "0" or "1"
  local text = body:gsub("TALKID", tostring(talk_id))
  text = text:gsub("CHATID", string.format("%08x-bench-%d", talk_id % 4294967296, talk_id))
  text = text:gsub("INWORK", in_work)
  text = text:gsub("CONTACTID", tostring(talk_id))
  local created = 1763900000 + counter * 60
  text = text:gsub("CREATEDAT", tostring(created))
  text = text:gsub("UPDATEDAT", tostring(created + 600))
  return wrk.format("POST", nil, nil, text)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"latency_p50_us":%d,"latency_p90_us":%d,' ..
    '"latency_p99_us":%d,"latency_max_us":%d,"latency_mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
