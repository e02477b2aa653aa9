"""Playwright on the system Chromium (headless; never `playwright install`, which downloads).

Browser tests skip only when Chromium is missing AND REQUIRE_SERVICES is not 1; on CI they must run.
Fixtures here have names of their own (`chromium`, `screenshots`) so test modules may keep theirs.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers.databases import migrate, truncate
from tests.helpers.environment import PG_URL, REQUIRE, unavailable

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def chromium():
    """One Chromium per test module: Playwright's sync API allows one running instance per thread,
    and other modules here start their own."""
    if not Path(CHROMIUM_PATH).exists():
        message = f"Chromium not found at {CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)"
        if REQUIRE:
            pytest.fail(message + " (REQUIRE_SERVICES=1: the browser tests must run)", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Screenshots:
    """`shot(page, "login")` saves test-artifacts/browser/NN-login.png, numbered in the order taken."""

    def __init__(self, folder: Path, prefix: str = ""):
        self.folder = folder
        self.prefix = prefix
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, name: str, full_page: bool = False) -> Path:
        self.count += 1
        path = self.folder / f"{self.prefix}{self.count:02d}-{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture(scope="session")
def _fresh_artifacts():
    """Screenshots of the previous run go away once, at the start of this one."""
    if ARTIFACTS.exists():
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()


@pytest.fixture
def screenshots(_fresh_artifacts):
    """Numbered per test; a test that is not the main walk sets `prefix` so the names stay apart."""
    return Screenshots(ARTIFACTS)


@pytest.fixture(scope="session")
def one_database(tmp_path_factory):
    """Browser walks are slow, so they run on one database: PostgreSQL (production's) when configured."""
    tmp = tmp_path_factory.mktemp("browser-db")
    if PG_URL or REQUIRE:
        from core.platform.settings import normalise_database_url
        from tests.helpers.databases import ensure_pg_database

        url = normalise_database_url(PG_URL)
        try:
            ensure_pg_database(url)
        except Exception as exc:  # pragma: no cover - depends on the machine
            unavailable("PostgreSQL", exc)
    else:
        url = f"sqlite:///{tmp}/browser.db"
    migrate(url, tmp)
    return url


@pytest.fixture
def db_url(one_database):
    truncate(one_database)
    yield one_database
