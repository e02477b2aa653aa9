"""Every benchmark of `make bench` runs at tiny sizes (seconds, not minutes), so benchmark code cannot rot
between the runs that produce the README's figures. Figures are not checked — only that each benchmark
starts the Procfile's processes, measures and writes its result rows."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from core.platform.settings import PROJECT_ROOT
from tests.helpers.environment import PG_URL, REDIS_URL, REQUIRE

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(600)]

TINY = {
    "webhook_ingest": ["--duration", "1", "--connections", "4", "--threads", "1", "--burst", "40", "--burst-concurrency", "4"],
    "processing_economy": ["--burst", "6", "--accounts", "2", "--threads", "2", "--latency-ms", "0"],
    "latency": ["--rate", "4", "--duration", "2", "--latency-ms", "0"],
    "tracking": ["--duration", "1", "--connections", "4", "--visitors", "20"],
    "reports": ["--requests", "300", "--sessions", "600", "--export-rows", "100"],
}


@pytest.fixture(scope="module")
def bench_env(tmp_path_factory):
    missing = [what for what, ok in (("PostgreSQL (TEST_DATABASE_URL)", PG_URL), ("Redis (TEST_REDIS_URL)", REDIS_URL),
                                     ("wrk", shutil.which("wrk"))) if not ok]
    if missing:
        message = f"the benchmark smoke test needs {', '.join(missing)}"
        if REQUIRE:
            pytest.fail(message + " (REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
    results = tmp_path_factory.mktemp("bench-results")
    env = {**os.environ, "BENCH_DATABASE_URL": PG_URL + "_bench", "BENCH_REDIS_URL": REDIS_URL,
           "BENCH_RESULTS_DIR": str(results), "PYTHONUNBUFFERED": "1"}
    yield env, results
    from tests.helpers.run_services import drop_pg_database

    drop_pg_database(PG_URL + "_bench")


@pytest.mark.parametrize("name", list(TINY))
def test_the_benchmark_runs_at_tiny_sizes(bench_env, name):
    env, results = bench_env
    before = set(results.glob(f"{name}-*.json"))
    run = subprocess.run([sys.executable, "-m", f"bench.{name}", *TINY[name]], cwd=PROJECT_ROOT, env=env,
                         capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    [written] = set(results.glob(f"{name}-*.json")) - before
    report = json.loads(written.read_text())
    assert report["benchmark"] == name and report["rows"], report
    assert all(row["value"] is not None for row in report["rows"]), report["rows"]
