"""Issue 10 §4: the defaults an operator gets without setting anything are the safe ones."""
from __future__ import annotations

import json
import os
import ssl
import stat

import pytest
from cryptography.fernet import Fernet

from core.platform.redis_connect import ssl_options
from core.platform.settings import ConfigError, Settings

PRODUCTION = {
    "PUBLIC_URL": "https://chats.example.com", "SECRET_KEY": "s" * 40,
    "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


# --- request bodies -------------------------------------------------------------------------------

def test_a_body_over_a_megabyte_is_refused_before_any_handler_reads_it(client, api):
    response = client.post("/api/v1/sites", headers=api, data=b'{"name": "' + b"x" * (1024 * 1024) + b'"}',
                           content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "request_entity_too_large"


@pytest.mark.parametrize("depth", [100_000, 3_000, 990])
def test_deeply_nested_json_on_the_data_api_is_a_400_with_a_message(client, api, depth):
    """Past ~1,000 levels json.loads raises RecursionError; just under it the document parses and then
    overflows the stack of the checks that walk it. Both were a 500."""
    response = client.post("/api/v1/sites", headers=api, data="[" * depth + "]" * depth, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": "bad_json", "message": "the JSON is nested deeper than 64 levels"}


def test_deeply_nested_json_on_collect_is_a_400_and_stores_nothing(client, api, services):
    from core.models import VisitorSession

    site = client.post("/api/v1/sites", headers=api, json={"name": "Магазин", "domain": "shop.example.ru"}).get_json()
    deep = "[" * 7_000 + "]" * 7_000
    payload = '{"site_key": "%s", "url": "https://shop.example.ru/", "x": %s}' % (site["site_key"], deep)
    response = client.post("/t/collect", data=payload, content_type="text/plain",
                           headers={"Origin": "https://shop.example.ru"})
    assert response.status_code == 400 and "nested deeper" in response.get_json()["error"]["message"]
    with services.session_factory() as session:
        assert session.query(VisitorSession).count() == 0


def test_deeply_nested_rules_from_the_admin_form_are_a_form_error():
    from core.tracking.conditions import ConditionError, validate_conditions

    with pytest.raises(ConditionError, match="nested too deeply"):
        validate_conditions("[" * 100_000 + "]" * 100_000)


def test_ordinary_nesting_still_parses(client, api):
    response = client.post("/api/v1/sites", headers=api, json={"name": "Сайт", "domain": "ok.example.ru"})
    assert response.status_code == 201


# --- APP_ENV ---------------------------------------------------------------------------------------

def test_no_app_env_means_production(tmp_path):
    """A Procfile or bare gunicorn start without APP_ENV used to generate secrets and serve plain http."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"INSTANCE_DIR": str(tmp_path)})
    assert "SECRET_KEY is required in production" in str(info.value)
    assert not (tmp_path / "dev-secrets.json").exists()
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path), **PRODUCTION})
    assert settings.is_production


def test_make_run_demo_and_sandbox_say_development_themselves():
    makefile = open(os.path.join(os.path.dirname(__file__), "..", "..", "Makefile")).read()
    assert "export APP_ENV ?= development" in makefile


# --- AMOCRM_ALLOWED_HOSTS in production ------------------------------------------------------------

@pytest.mark.parametrize("entry", ["127.0.0.1", "localhost", "::1", "10.0.0.5", "*.ru", "*", "*.com", "*.10.0.0.1", "amocrm"])
def test_production_refuses_allowed_hosts_that_reach_anything_but_amocrm(tmp_path, entry):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"INSTANCE_DIR": str(tmp_path), **PRODUCTION, "AMOCRM_ALLOWED_HOSTS": f"*.amocrm.ru,{entry}"})
    assert "AMOCRM_ALLOWED_HOSTS" in str(info.value) and entry in str(info.value)


def test_production_accepts_real_amocrm_domains(tmp_path):
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path), **PRODUCTION,
                                  "AMOCRM_ALLOWED_HOSTS": "*.amocrm.ru,*.kommo.com,crm.example.co.uk"})
    assert settings.amocrm_allowed_hosts == ("*.amocrm.ru", "*.kommo.com", "crm.example.co.uk")


def test_development_keeps_the_loopback_sandbox(tmp_path):
    settings = Settings.from_env({"APP_ENV": "development", "INSTANCE_DIR": str(tmp_path),
                                  "AMOCRM_ALLOWED_HOSTS": "*.amocrm.ru,127.0.0.1,localhost"})
    assert "127.0.0.1" in settings.amocrm_allowed_hosts


@pytest.mark.parametrize("app_env", [None, "production"])
def test_the_sandbox_refuses_to_start_outside_development(monkeypatch, capsys, app_env):
    from sandbox.__main__ import main

    monkeypatch.delenv("APP_ENV", raising=False)
    if app_env:
        monkeypatch.setenv("APP_ENV", app_env)
    assert main(["--port", "0"]) == 2
    assert "runs only in development" in capsys.readouterr().err


# --- Redis over TLS --------------------------------------------------------------------------------

def test_rediss_verifies_the_certificate_unless_turned_off(monkeypatch):
    monkeypatch.delenv("REDIS_SSL_CERT_REQS", raising=False)
    assert ssl_options("rediss://h:6380/0") == {"ssl_cert_reqs": "required"}
    assert ssl_options("rediss://h:6380/0", "none") == {"ssl_cert_reqs": "none"}
    assert ssl_options("redis://h:6379/0", "none") == {}
    monkeypatch.setenv("REDIS_SSL_CERT_REQS", "none")
    assert ssl_options("rediss://h:6380/0") == {"ssl_cert_reqs": "none"}


def _cert_reqs(client):
    return client.connection_pool.make_connection().cert_reqs


def test_the_broker_and_clients_verify_rediss_unless_told(monkeypatch):
    """workers/broker.py asked for ssl_cert_reqs=None on every rediss:// url."""
    from core.platform.redis_connect import redis_client
    from workers.broker import make_broker

    monkeypatch.delenv("REDIS_SSL_CERT_REQS", raising=False)
    assert _cert_reqs(make_broker("rediss://127.0.0.1:1/0").client) == ssl.CERT_REQUIRED
    assert _cert_reqs(redis_client("rediss://127.0.0.1:1/0")) == ssl.CERT_REQUIRED
    monkeypatch.setenv("REDIS_SSL_CERT_REQS", "none")
    assert _cert_reqs(make_broker("rediss://127.0.0.1:1/0").client) == ssl.CERT_NONE


def test_redis_cert_setting_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="REDIS_SSL_CERT_REQS"):
        Settings.from_env({"APP_ENV": "development", "INSTANCE_DIR": str(tmp_path), "REDIS_SSL_CERT_REQS": "optional"})


# --- dev secrets -----------------------------------------------------------------------------------

def test_dev_secrets_are_created_private_from_the_first_byte(tmp_path, monkeypatch):
    """Written then chmod-ed, the file was world-readable for a moment (umask 022); now it is born 0600."""
    monkeypatch.setattr(os, "chmod", lambda *a, **k: pytest.fail("the secrets file must not need a chmod"))
    old = os.umask(0)
    try:
        Settings.from_env({"APP_ENV": "development", "INSTANCE_DIR": str(tmp_path)})
    finally:
        os.umask(old)
    path = tmp_path / "dev-secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text())) == {"SECRET_KEY", "TOKEN_ENCRYPTION_KEY"}
